/* The configuration: one table row per key (PRODUCT.md's table plus a few of ours), read from an
 * optional dotenv file and the environment, which wins. main.c loads it at start and again on
 * SIGHUP, on the loop thread; the result is immutable, so any thread may read it. --help prints
 * the same table, so the documentation cannot drift from the code; its `reload` column says what
 * SIGHUP changes in a running bridge. The parsers of the values themselves are in
 * config_values.c. */
#include "bridge/config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bridge/config_values.h"
#include "bridge/dotenv.h"

#define PROBLEM_MAX    256
#define NAME_MAX_SHOWN 64 /* characters of an unknown key's name quoted back */
/* Our default client id; MQTT 3.1.1 promises only 23, but brokers allow far more. */
#define CLIENT_ID_MAX 64
/* Sinch's limit on a webhook target (sinch-conversation-api.md 6.2). */
#define WEBHOOK_URL_MAX  742
#define SUGGEST_DISTANCE 3 /* an unknown key this close to a known one is probably a typo */

enum kind {
    K_STRING,  /* char *, optionally checked (and canonicalised in place) by `check` */
    K_SECRET,  /* char *, never quoted in a message, wiped before it is freed */
    K_BOOL,    /* bool: 0/1, true/false, yes/no, on/off */
    K_LONG,    /* long within [min, max] */
    K_DOUBLE,  /* double within [min, max] */
    K_ENUM,    /* int, or an enum the size of an int: the value of one of `choices` */
    K_SPECIAL, /* `parse` fills one or more fields */
};

struct choice {
    const char *name;
    int value;
};

/* Checks a string value and may canonicalise it in place (it is the config's own copy, and may
 * only get shorter). Returns true when it is valid, else writes what is wrong into `problem`. */
typedef bool (*check_fn)(char *value, char *problem, size_t len);
/* Parses a value into fields of `cfg`. Returns SB_OK, SB_E_CONFIG with `problem` written, or
 * SB_E_NOMEM. What it allocated before failing is freed by sb_config_free(). */
typedef enum sb_err (*parse_fn)(struct sb_config *cfg, const char *value, char *problem,
                                size_t len);

struct key {
    const char *name;
    enum kind kind;
    bool required;
    size_t off;                   /* of the field in struct sb_config (not K_SPECIAL) */
    const char *def;              /* the default, parsed like a given value; NULL: none */
    const char *shown;            /* --help's default when it is derived from other keys */
    long min, max;                /* K_LONG, K_DOUBLE */
    const struct choice *choices; /* K_ENUM: ends with a NULL name */
    check_fn check;               /* K_STRING: optional */
    parse_fn parse;               /* K_SPECIAL */
    bool reload;                  /* SIGHUP applies a new value (read on the loop thread only) */
    const char *help;
};

/* The offset of `field`, which must have type `type`: a wrong row fails to compile ("comparison
 * of distinct pointer types") instead of writing a long into a bool. */
#define OFF(field, type)                                                                           \
    (offsetof(struct sb_config, field) + 0 * sizeof((type *)0 == &((struct sb_config *)0)->field))

_Static_assert(sizeof(enum sb_auth_mode) == sizeof(int), "K_ENUM stores an int");
_Static_assert(sizeof(enum sb_log_level) == sizeof(int), "K_ENUM stores an int");
_Static_assert(sizeof(enum sb_log_format) == sizeof(int), "K_ENUM stores an int");

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n--) {
        *v++ = 0;
    }
}

static void free_string(char *s, bool secret)
{
    if (s && secret) {
        wipe(s, strlen(s));
    }
    free(s);
}

/* ---- the table ---- */

static const struct choice auth_choices[] = {
    {"oauth", SB_AUTH_OAUTH},
    {"basic", SB_AUTH_BASIC},
    {NULL, 0},
};

static const struct choice mqtt_version_choices[] = {
    {"5", 5},
    {"3.1.1", 4}, /* the protocol level byte of MQTT 3.1.1 */
    {NULL, 0},
};

static const struct choice log_level_choices[] = {
    {"error", SB_LOG_ERROR}, {"warn", SB_LOG_WARN},   {"notice", SB_LOG_NOTICE},
    {"info", SB_LOG_INFO},   {"debug", SB_LOG_DEBUG}, {NULL, 0},
};

static const struct choice log_format_choices[] = {
    {"text", SB_LOG_TEXT},
    {"json", SB_LOG_JSON},
    {NULL, 0},
};

static const struct key keys[] = {
    /* Sinch */
    {.name = "SINCH_PROJECT_ID",
     .kind = K_STRING,
     .off = OFF(project_id, char *),
     .check = sb_config_check_id,
     .required = true,
     .help = "project id of the Sinch account"},
    {.name = "SINCH_APP_ID",
     .kind = K_STRING,
     .off = OFF(app_id, char *),
     .check = sb_config_check_id,
     .required = true,
     .help = "id of the Conversation API app"},
    {.name = "SINCH_KEY_ID",
     .kind = K_STRING,
     .off = OFF(key_id, char *),
     .check = sb_config_check_key_id,
     .help = "access key id (required in both auth modes)"},
    {.name = "SINCH_KEY_SECRET",
     .kind = K_SECRET,
     .off = OFF(key_secret, char *),
     .help = "access key secret (required in both auth modes)"},
    {.name = "SINCH_REGION",
     .kind = K_STRING,
     .off = OFF(region, char *),
     .def = "us",
     .check = sb_config_check_region,
     .help = "region the app was created in: us, eu or br (a wrong region answers 404)"},
    {.name = "SINCH_AUTH",
     .kind = K_ENUM,
     .off = OFF(auth, enum sb_auth_mode),
     .def = "oauth",
     .choices = auth_choices,
     .help = "oauth: a token fetched, cached and refreshed; basic: the key on every request"},
    {.name = "SINCH_API_URL",
     .kind = K_STRING,
     .off = OFF(api_url, char *),
     .shown = "https://<region>.conversation.api.sinch.com",
     .check = sb_config_check_api_url,
     .help = "Conversation API base, scheme://host[:port] (for proxies and sinch-sim)"},
    {.name = "SINCH_AUTH_URL",
     .kind = K_STRING,
     .off = OFF(auth_url, char *),
     .def = "https://auth.sinch.com/oauth2/token",
     .check = sb_config_check_http_url,
     .help = "the whole OAuth token URL"},
    {.name = "SINCH_WEBHOOK_SECRET",
     .kind = K_SECRET,
     .off = OFF(webhook_secret, char *),
     .help = "HMAC secret of the app's webhook; not set: the webhook path answers 503"},
    {.name = "SINCH_DEFAULT_CHANNEL",
     .kind = K_STRING,
     .off = OFF(default_channel, char *),
     .def = "WHATSAPP",
     .check = sb_config_check_channel,
     .help = "channel of a command that names none"},
    {.name = "BRIDGE_SINCH_TIMEOUT",
     .kind = K_LONG,
     .off = OFF(sinch_timeout, long),
     .def = "30",
     .min = 1,
     .max = 600,
     .help = "seconds one HTTP request to Sinch may take"},
    {.name = "BRIDGE_SINCH_CONNECTIONS",
     .kind = K_LONG,
     .off = OFF(sinch_connections, long),
     .def = "16",
     .min = 1,
     .max = 256,
     .help = "most parallel connections to Sinch"},

    /* MQTT */
    {.name = "MQTT_URL",
     .kind = K_STRING,
     .off = OFF(mqtt_url, char *),
     .def = "mqtt://127.0.0.1:1883",
     .check = sb_config_check_mqtt_url,
     .help = "broker: mqtt://, mqtts://, ws:// or wss://, host, optional port (ws: a path too)"},
    {.name = "MQTT_USERNAME",
     .kind = K_STRING,
     .off = OFF(mqtt_username, char *),
     .help = "user name at the broker"},
    {.name = "MQTT_PASSWORD",
     .kind = K_SECRET,
     .off = OFF(mqtt_password, char *),
     .help = "password at the broker"},
    {.name = "MQTT_CLIENT_ID",
     .kind = K_STRING,
     .off = OFF(mqtt_client_id, char *),
     .shown = "sinch-bridge-<prefix>-<hostname>",
     .check = sb_config_check_client_id,
     .help = "stable session id; give each bridge on one host its own"},
    {.name = "MQTT_CA_FILE",
     .kind = K_STRING,
     .off = OFF(mqtt_ca_file, char *),
     .help = "CA certificates (PEM) that verify the broker; the system's when not set"},
    {.name = "MQTT_CERT_FILE",
     .kind = K_STRING,
     .off = OFF(mqtt_cert_file, char *),
     .help = "client certificate (PEM) for TLS client authentication"},
    {.name = "MQTT_KEY_FILE",
     .kind = K_STRING,
     .off = OFF(mqtt_key_file, char *),
     .help = "private key (PEM) of MQTT_CERT_FILE"},
    {.name = "MQTT_VERSION",
     .kind = K_ENUM,
     .off = OFF(mqtt_version, int),
     .def = "5",
     .choices = mqtt_version_choices,
     .help = "MQTT protocol version"},
    {.name = "BRIDGE_MQTT_MAX_INFLIGHT",
     .kind = K_LONG,
     .off = OFF(mqtt_max_inflight, long),
     .def = "20",
     .min = 1,
     .max = 65535,
     .help = "QoS 1 publishes unacknowledged at most; at most the broker's receive maximum "
             "(mosquitto: max_inflight_messages, 20 by default)"},

    /* Bridge */
    {.name = "BRIDGE_TOPIC_PREFIX",
     .kind = K_STRING,
     .off = OFF(topic_prefix, char *),
     .def = "sinch",
     .check = sb_config_check_topic_part,
     .help = "first levels of every topic; no '+', '#', leading or trailing '/'"},
    {.name = "BRIDGE_SHARE_GROUP",
     .kind = K_STRING,
     .off = OFF(share_group, char *),
     .check = sb_config_check_share_group,
     .help = "shared-subscription group: the bridges in one group split the commands"},
    {.name = "BRIDGE_LISTEN",
     .kind = K_SPECIAL,
     .def = "0.0.0.0:8080",
     .parse = sb_config_parse_listen,
     .help = "webhook, health and metrics listener: host:port or [IPv6]:port (port 0: any)"},
    {.name = "BRIDGE_WEBHOOK_PATH",
     .kind = K_STRING,
     .off = OFF(webhook_path, char *),
     .def = "/webhooks/sinch",
     .check = sb_config_check_path,
     .help = "path of the webhook endpoint"},
    {.name = "BRIDGE_WEBHOOK_MAX_SKEW",
     .kind = K_LONG,
     .off = OFF(webhook_max_skew, long),
     .def = "300",
     .min = 1,
     .max = 86400,
     .help = "seconds a webhook's signature timestamp may differ from now"},
    {.name = "BRIDGE_WEBHOOK_INSECURE",
     .kind = K_BOOL,
     .off = OFF(webhook_insecure, bool),
     .def = "0",
     .help = "1: accept unsigned webhooks when SINCH_WEBHOOK_SECRET is not set"},
    {.name = "BRIDGE_PUBLIC_URL",
     .kind = K_STRING,
     .off = OFF(public_url, char *),
     .check = sb_config_check_public_url,
     .help = "public base URL of this bridge; the webhook target is it + BRIDGE_WEBHOOK_PATH"},
    {.name = "BRIDGE_REGISTER_WEBHOOK",
     .kind = K_BOOL,
     .off = OFF(register_webhook, bool),
     .def = "0",
     .help = "1: create or update the app's webhook at start (needs BRIDGE_PUBLIC_URL)"},
    {.name = "BRIDGE_DATA_DIR",
     .kind = K_STRING,
     .off = OFF(data_dir, char *),
     .def = "./data",
     .help = "directory of the SQLite store"},
    {.name = "BRIDGE_RATE_LIMIT",
     .reload = true,
     .kind = K_DOUBLE,
     .off = OFF(rate_limit, double),
     .def = "20",
     .min = 0,
     .max = 1000000,
     .help = "sends per second (Sinch drains an app's queue at 20/s); 0: unlimited"},
    {.name = "BRIDGE_MAX_AGE",
     .reload = true,
     .kind = K_LONG,
     .off = OFF(max_age, long),
     .def = "86400",
     .min = 1,
     .max = 31536000,
     .help = "seconds a command may wait for Sinch before it expires"},
    {.name = "BRIDGE_RETRY_MAX_DELAY",
     .reload = true,
     .kind = K_LONG,
     .off = OFF(retry_max_delay, long),
     .def = "60",
     .min = 1,
     .max = 3600,
     .help = "longest wait between two retries, seconds"},
    {.name = "BRIDGE_ALLOW_TO",
     .reload = true,
     .kind = K_SPECIAL,
     .parse = sb_config_parse_allow_to,
     .help = "comma-separated E.164 numbers or prefixes (+4670*) allowed as recipients; "
             "not set: all"},
    {.name = "BRIDGE_CONTACTS",
     .reload = true,
     .kind = K_SPECIAL,
     .parse = sb_config_parse_contacts,
     .help = "aliases for topics and commands: mom=+46701234567,ops=+15551234567"},
    {.name = "BRIDGE_RECIPIENT_LIMIT",
     .reload = true,
     .kind = K_LONG,
     .off = OFF(recipient_limit, long),
     .def = "0",
     .min = 0,
     .max = 1000000,
     .help = "most messages per recipient per hour; 0: no limit"},
    {.name = "BRIDGE_WINDOW_CHECK",
     .reload = true,
     .kind = K_BOOL,
     .off = OFF(window_check, bool),
     .def = "0",
     .help = "1: apply WhatsApp's 24-hour rule before sending"},
    {.name = "BRIDGE_HEALTH_INTERVAL",
     .reload = true,
     .kind = K_LONG,
     .off = OFF(health_interval, long),
     .def = "60",
     .min = 0,
     .max = 86400,
     .help = "seconds between P/bridge/health publishes; 0: off"},
    {.name = "BRIDGE_HA_DISCOVERY",
     .kind = K_BOOL,
     .off = OFF(ha_discovery, bool),
     .def = "0",
     .help = "1: publish Home Assistant MQTT discovery"},
    {.name = "BRIDGE_HA_PREFIX",
     .kind = K_STRING,
     .off = OFF(ha_prefix, char *),
     .def = "homeassistant",
     .check = sb_config_check_topic_part,
     .help = "Home Assistant discovery prefix"},
    {.name = "BRIDGE_LOG_LEVEL",
     .reload = true,
     .kind = K_ENUM,
     .off = OFF(log_level, enum sb_log_level),
     .def = "info",
     .choices = log_level_choices,
     .help = "least important log lines written"},
    {.name = "BRIDGE_LOG_FORMAT",
     .reload = true,
     .kind = K_ENUM,
     .off = OFF(log_format, enum sb_log_format),
     .def = "text",
     .choices = log_format_choices,
     .help = "json: one JSON object a line"},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

/* ---- loading ---- */

struct raw {
    char *value;   /* our copy, wiped before it is freed; NULL: not given */
    unsigned line; /* its line in the file; 0: from the environment */
};

struct loader {
    const char *file;
    struct raw raw[N_KEYS];
    bool in_env[N_KEYS];
};

static size_t find_key(const char *name)
{
    size_t i;

    for (i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].name, name) == 0) {
            break;
        }
    }
    return i;
}

/* Keys of ours, in any case: a lower-case sinch_app_id is a typo to report, not to ignore. */
static bool is_ours(const char *name)
{
    return strncasecmp(name, "SINCH_", 6) == 0 || strncasecmp(name, "MQTT_", 5) == 0 ||
           strncasecmp(name, "BRIDGE_", 7) == 0;
}

/* Case-insensitive edit distance, for "did you mean". */
static size_t distance(const char *a, const char *b)
{
    size_t row[NAME_MAX_SHOWN + 1];
    size_t la = strlen(a);
    size_t lb = strlen(b);

    if (la > NAME_MAX_SHOWN || lb > NAME_MAX_SHOWN) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = toupper((unsigned char)a[i - 1]) != toupper((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static enum sb_err unknown_key(const char *file, unsigned line, const char *name, char *why,
                               size_t why_len)
{
    char hint[64] = "see --help for the keys";
    char shown[NAME_MAX_SHOWN + 8];
    size_t best = SUGGEST_DISTANCE + 1;

    for (size_t i = 0; i < N_KEYS; i++) {
        size_t d = distance(name, keys[i].name);
        if (d < best) {
            best = d;
            snprintf(hint, sizeof(hint), "did you mean %s?", keys[i].name);
        }
    }
    sb_config_show_n(name, NAME_MAX_SHOWN, shown, sizeof(shown));
    if (file) {
        sb_config_say(why, why_len, "%s:%u: unknown key %s (%s)", file, line, shown, hint);
    } else {
        sb_config_say(why, why_len, "unknown key %s in the environment (%s)", shown, hint);
    }
    return SB_E_CONFIG;
}

/* An empty value counts as not given, so the file's value or the default stays. */
static enum sb_err set_raw(struct loader *ld, size_t i, const char *value, unsigned line)
{
    char *copy;

    if (value[0] == '\0') {
        return SB_OK;
    }
    copy = strdup(value);
    if (!copy) {
        return SB_E_NOMEM;
    }
    free_string(ld->raw[i].value, true);
    ld->raw[i].value = copy;
    ld->raw[i].line = line;
    return SB_OK;
}

/* Keys not ours (no SINCH_, MQTT_ or BRIDGE_) are skipped in the file as in the environment, so
 * one .env file may serve docker compose and other programs too. A key given twice in the file:
 * the last one wins, as when a shell sources it. */
static enum sb_err on_file_pair(const char *key, const char *value, unsigned line, void *arg,
                                char *why, size_t why_len)
{
    struct loader *ld = arg;
    size_t i;

    if (!is_ours(key)) {
        return SB_OK;
    }
    i = find_key(key);
    if (i == N_KEYS) {
        return unknown_key(ld->file, line, key, why, why_len);
    }
    return set_raw(ld, i, value, line);
}

static enum sb_err read_env(struct loader *ld, char *const *env, char *why, size_t why_len)
{
    for (char *const *e = env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        char name[NAME_MAX_SHOWN + 1];
        size_t n;
        size_t i;
        enum sb_err err;

        if (!eq || !is_ours(*e)) {
            continue;
        }
        n = (size_t)(eq - *e);
        if (n > NAME_MAX_SHOWN) {
            n = NAME_MAX_SHOWN; /* too long to be a key: reported as unknown, cut */
        }
        memcpy(name, *e, n);
        name[n] = '\0';
        i = (size_t)(eq - *e) > NAME_MAX_SHOWN ? N_KEYS : find_key(name);
        if (i == N_KEYS) {
            return unknown_key(NULL, 0, name, why, why_len);
        }
        if (ld->in_env[i]) {
            continue; /* the first of two wins, as with getenv() */
        }
        ld->in_env[i] = true;
        err = set_raw(ld, i, eq + 1, 0);
        if (err != SB_OK) {
            return err;
        }
    }
    return SB_OK;
}

/* Writes "[file:line: ]KEY: problem" into why. */
static enum sb_err fail(const struct loader *ld, size_t i, const char *problem, char *why,
                        size_t why_len)
{
    if (ld->raw[i].value && ld->raw[i].line > 0) {
        sb_config_say(why, why_len, "%s:%u: %s: %s", ld->file, ld->raw[i].line, keys[i].name,
                      problem);
    } else {
        sb_config_say(why, why_len, "%s: %s", keys[i].name, problem);
    }
    return SB_E_CONFIG;
}

/* Parses the value of row i (given, or its default) into cfg. */
static enum sb_err apply(const struct loader *ld, size_t i, struct sb_config *cfg, char *why,
                         size_t why_len)
{
    const struct key *k = &keys[i];
    const char *v = ld->raw[i].value ? ld->raw[i].value : k->def;
    void *field = (char *)cfg + k->off;
    char problem[PROBLEM_MAX] = "";
    char shown[SB_CONFIG_SHOW_MAX + 8];
    enum sb_err err;

    if (!v) {
        return k->required ? fail(ld, i, "not set; it is required", why, why_len) : SB_OK;
    }
    switch (k->kind) {
    case K_STRING:
    case K_SECRET: {
        char *copy = strdup(v);
        if (!copy) {
            return SB_E_NOMEM;
        }
        *(char **)field = copy; /* sb_config_free() frees it, whatever happens next */
        if (k->check && !k->check(copy, problem, sizeof(problem))) {
            return fail(ld, i, problem, why, why_len);
        }
        return SB_OK;
    }
    case K_BOOL:
        if (!sb_config_parse_bool(v, (bool *)field)) {
            sb_config_say(problem, sizeof(problem),
                          "\"%s\" is not 0/1, true/false, yes/no or on/off",
                          sb_config_show(v, shown, sizeof(shown)));
            return fail(ld, i, problem, why, why_len);
        }
        return SB_OK;
    case K_LONG: {
        long x = 0;
        enum sb_config_number got = sb_config_parse_long(v, &x);
        if (got == SB_CONFIG_NUMBER_BAD) {
            sb_config_say(problem, sizeof(problem), "\"%s\" is not a whole number",
                          sb_config_show(v, shown, sizeof(shown)));
            return fail(ld, i, problem, why, why_len);
        }
        if (got == SB_CONFIG_NUMBER_RANGE || x < k->min || x > k->max) {
            sb_config_say(problem, sizeof(problem), "%s is not in %ld..%ld",
                          sb_config_show(v, shown, sizeof(shown)), k->min, k->max);
            return fail(ld, i, problem, why, why_len);
        }
        *(long *)field = x;
        return SB_OK;
    }
    case K_DOUBLE: {
        double x;
        if (!sb_config_parse_double(v, &x)) {
            sb_config_say(problem, sizeof(problem), "\"%s\" is not a number",
                          sb_config_show(v, shown, sizeof(shown)));
            return fail(ld, i, problem, why, why_len);
        }
        if (x < (double)k->min || x > (double)k->max) {
            sb_config_say(problem, sizeof(problem), "%s is not in %ld..%ld",
                          sb_config_show(v, shown, sizeof(shown)), k->min, k->max);
            return fail(ld, i, problem, why, why_len);
        }
        *(double *)field = x;
        return SB_OK;
    }
    case K_ENUM: {
        size_t used = 0;
        for (const struct choice *c = k->choices; c->name; c++) {
            if (strcasecmp(v, c->name) == 0) {
                memcpy(field, &c->value, sizeof(int));
                return SB_OK;
            }
        }
        used = (size_t)snprintf(problem, sizeof(problem), "\"%s\" is not one of",
                                sb_config_show(v, shown, sizeof(shown)));
        for (const struct choice *c = k->choices; c->name && used < sizeof(problem); c++) {
            used += (size_t)snprintf(problem + used, sizeof(problem) - used, "%s %s",
                                     c == k->choices ? "" : ",", c->name);
        }
        return fail(ld, i, problem, why, why_len);
    }
    case K_SPECIAL:
        err = k->parse(cfg, v, problem, sizeof(problem));
        return err == SB_E_CONFIG ? fail(ld, i, problem, why, why_len) : err;
    }
    return SB_E_BUG;
}

/* MQTT_CLIENT_ID's default, PRODUCT.md "Sessions": stable across restarts, distinct per host.
 * Cut to CLIENT_ID_MAX (the hostname first); characters brokers might mind (a '/' of the prefix,
 * say) become '-'. */
static char *default_client_id(const char *prefix)
{
    char host[256];
    char id[CLIENT_ID_MAX + 1];

    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0') {
        snprintf(host, sizeof(host), "localhost");
    }
    host[sizeof(host) - 1] = '\0';
    /* snprintf cuts at CLIENT_ID_MAX: the end of the hostname goes first, then the prefix. */
    if (snprintf(id, sizeof(id), "sinch-bridge-%s-%s", prefix, host) < 0) {
        return NULL;
    }
    for (char *p = id; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
            *p = '-';
        }
    }
    return strdup(id);
}

/* The rules between keys, once every key is parsed. */
static enum sb_err finish(const struct loader *ld, struct sb_config *cfg, char *why, size_t why_len)
{
    char problem[PROBLEM_MAX];
    const char *mode = cfg->auth == SB_AUTH_BASIC ? "basic" : "oauth";

    if (!cfg->key_id || !cfg->key_secret) {
        sb_config_say(problem, sizeof(problem), "not set; it is required with SINCH_AUTH=%s", mode);
        return fail(ld, find_key(cfg->key_id ? "SINCH_KEY_SECRET" : "SINCH_KEY_ID"), problem, why,
                    why_len);
    }
    if (!cfg->api_url) {
        char url[128];
        snprintf(url, sizeof(url), "https://%s.conversation.api.sinch.com", cfg->region);
        cfg->api_url = strdup(url);
        if (!cfg->api_url) {
            return SB_E_NOMEM;
        }
    }
    if (!cfg->mqtt_client_id) {
        cfg->mqtt_client_id = default_client_id(cfg->topic_prefix);
        if (!cfg->mqtt_client_id) {
            return SB_E_NOMEM;
        }
    }
    if (cfg->register_webhook && !cfg->public_url) {
        return fail(ld, find_key("BRIDGE_REGISTER_WEBHOOK"),
                    "needs BRIDGE_PUBLIC_URL, the URL at which Sinch reaches this bridge", why,
                    why_len);
    }
    if (cfg->register_webhook &&
        strlen(cfg->public_url) + strlen(cfg->webhook_path) > WEBHOOK_URL_MAX) {
        sb_config_say(
            problem, sizeof(problem),
            "with BRIDGE_WEBHOOK_PATH it is longer than Sinch's %d characters for a webhook",
            WEBHOOK_URL_MAX);
        return fail(ld, find_key("BRIDGE_PUBLIC_URL"), problem, why, why_len);
    }
    if (cfg->mqtt_version == 4 && cfg->mqtt_password && !cfg->mqtt_username) {
        /* MQTT 3.1.1 [MQTT-3.1.2-22]: no password flag without the user name flag. */
        return fail(ld, find_key("MQTT_PASSWORD"), "needs MQTT_USERNAME with MQTT 3.1.1", why,
                    why_len);
    }
    return SB_OK;
}

enum sb_err sb_config_load(const char *file, char *const *env, struct sb_config **out, char *why,
                           size_t why_len)
{
    struct loader *ld = NULL;
    struct sb_config *cfg = NULL;
    enum sb_err err = SB_E_NOMEM;

    if (why && why_len > 0) {
        why[0] = '\0';
    }
    if (!out) {
        sb_config_say(why, why_len, "no place for the configuration");
        return SB_E_INVAL;
    }
    *out = NULL;
    ld = calloc(1, sizeof(*ld));
    cfg = calloc(1, sizeof(*cfg));
    if (!ld || !cfg) {
        goto out;
    }
    ld->file = file;
    if (file) {
        err = sb_dotenv_read(file, on_file_pair, ld, why, why_len);
        if (err != SB_OK) {
            goto out;
        }
    }
    err = read_env(ld, env, why, why_len);
    for (size_t i = 0; i < N_KEYS && err == SB_OK; i++) {
        err = apply(ld, i, cfg, why, why_len);
    }
    if (err == SB_OK) {
        err = finish(ld, cfg, why, why_len);
    }
    if (err == SB_OK) {
        *out = cfg;
        cfg = NULL;
    }
out:
    if (err == SB_E_NOMEM) {
        sb_config_say(why, why_len, "out of memory while loading the configuration");
    } else if (err != SB_OK && err != SB_E_BUG) {
        err = SB_E_CONFIG; /* the header's promise: a file that cannot be read is one too */
    }
    if (ld) {
        for (size_t i = 0; i < N_KEYS; i++) {
            free_string(ld->raw[i].value, true);
        }
        free(ld);
    }
    sb_config_free(cfg);
    return err;
}

void sb_config_free(struct sb_config *cfg)
{
    if (!cfg) {
        return;
    }
    for (size_t i = 0; i < N_KEYS; i++) {
        if (keys[i].kind == K_STRING || keys[i].kind == K_SECRET) {
            char **p = (char **)((char *)cfg + keys[i].off);
            free_string(*p, keys[i].kind == K_SECRET);
        }
    }
    free(cfg->listen_host);
    for (size_t i = 0; i < cfg->n_allow_to; i++) {
        free(cfg->allow_to[i]);
    }
    free(cfg->allow_to);
    for (size_t i = 0; i < cfg->n_contacts; i++) {
        free(cfg->contacts[i].alias);
        free(cfg->contacts[i].number);
    }
    free(cfg->contacts);
    free(cfg);
}

void sb_config_print_help(FILE *f)
{
    fprintf(f, "Configuration: environment variables, or KEY=value lines in the --config file\n"
               "(the environment wins; an empty value counts as not set).\n\n");
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key *k = &keys[i];

        if (k->required) {
            fprintf(f, "  %s (required)\n", k->name);
        } else if (k->def || k->shown) {
            fprintf(f, "  %s (default: %s)\n", k->name, k->def ? k->def : k->shown);
        } else {
            fprintf(f, "  %s (no default)\n", k->name);
        }
        fprintf(f, "      %s", k->help);
        if (k->kind == K_LONG || k->kind == K_DOUBLE) {
            fprintf(f, " [%ld..%ld]", k->min, k->max);
        } else if (k->kind == K_BOOL) {
            fprintf(f, " [0|1]");
        } else if (k->kind == K_ENUM) {
            for (const struct choice *c = k->choices; c->name; c++) {
                fprintf(f, "%s%s", c == k->choices ? " [" : "|", c->name);
            }
            fprintf(f, "]");
        } else if (k->kind == K_SECRET) {
            fprintf(f, " [secret]");
        }
        fprintf(f, "%s\n", k->reload ? " (SIGHUP reloads it)" : "");
    }
}

/* ---- SIGHUP ---- */

static size_t field_size(const struct key *k)
{
    switch (k->kind) {
    case K_STRING:
    case K_SECRET:
        return sizeof(char *);
    case K_BOOL:
        return sizeof(bool);
    case K_LONG:
        return sizeof(long);
    case K_DOUBLE:
        return sizeof(double);
    case K_ENUM:
        return sizeof(int);
    case K_SPECIAL:
        break;
    }
    return 0;
}

static bool same_strings(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_value(const struct key *k, const struct sb_config *a, const struct sb_config *b)
{
    const char *pa = (const char *)a + k->off;
    const char *pb = (const char *)b + k->off;

    if (k->kind == K_STRING || k->kind == K_SECRET) {
        return same_strings(*(char *const *)pa, *(char *const *)pb);
    }
    if (k->kind == K_SPECIAL) {
        if (k->parse == sb_config_parse_listen) {
            return same_strings(a->listen_host, b->listen_host) && a->listen_port == b->listen_port;
        }
        if (k->parse == sb_config_parse_allow_to) {
            bool same = a->n_allow_to == b->n_allow_to;
            for (size_t i = 0; same && i < a->n_allow_to; i++) {
                same = strcmp(a->allow_to[i], b->allow_to[i]) == 0;
            }
            return same;
        }
        bool same = a->n_contacts == b->n_contacts; /* BRIDGE_CONTACTS */
        for (size_t i = 0; same && i < a->n_contacts; i++) {
            same = strcmp(a->contacts[i].alias, b->contacts[i].alias) == 0 &&
                   strcmp(a->contacts[i].number, b->contacts[i].number) == 0;
        }
        return same;
    }
    return memcmp(pa, pb, field_size(k)) == 0;
}

#define SWAP(type, x, y)                                                                           \
    do {                                                                                           \
        type t_ = (x);                                                                             \
        (x) = (y);                                                                                 \
        (y) = t_;                                                                                  \
    } while (0)

static void swap_value(const struct key *k, struct sb_config *a, struct sb_config *b)
{
    if (k->kind != K_SPECIAL) {
        unsigned char tmp[sizeof(double) + sizeof(char *)]; /* holds either */
        char *pa = (char *)a + k->off;
        char *pb = (char *)b + k->off;
        size_t n = field_size(k);

        memcpy(tmp, pa, n);
        memcpy(pa, pb, n);
        memcpy(pb, tmp, n);
    } else if (k->parse == sb_config_parse_allow_to) {
        SWAP(char **, a->allow_to, b->allow_to);
        SWAP(size_t, a->n_allow_to, b->n_allow_to);
    } else if (k->parse == sb_config_parse_contacts) {
        SWAP(struct sb_contact *, a->contacts, b->contacts);
        SWAP(size_t, a->n_contacts, b->n_contacts);
    }
}

static void add_name(char *list, size_t len, const char *name)
{
    size_t used = strlen(list);
    snprintf(list + used, len - used, "%s%s", used ? ", " : "", name);
}

void sb_config_reload(struct sb_config *live, struct sb_config *fresh, struct sb_config_diff *diff)
{
    diff->changed[0] = diff->restart[0] = '\0';
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key *k = &keys[i];

        if (same_value(k, live, fresh)) {
            continue;
        }
        if (k->reload) {
            swap_value(k, live, fresh);
            add_name(diff->changed, sizeof(diff->changed), k->name);
        } else {
            add_name(diff->restart, sizeof(diff->restart), k->name);
        }
    }
}
