/* Tests of bridge/config.c and bridge/dotenv.c: tables of good and bad configurations from the
 * environment and from dotenv files, E.164 rows, contact and allow-list lookups, --help. */
#include "bridge/config.h"
#include "bridge/dotenv.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define MAX_ENV 12
/* Every bad case carries this as SINCH_KEY_SECRET; no message may ever contain it. */
#define SECRET "s3cr3t-Xq7-do-not-leak"
#define BASE                                                                                       \
    "SINCH_PROJECT_ID=proj-1", "SINCH_APP_ID=01APPID", "SINCH_KEY_ID=key-1",                       \
        ("SINCH_KEY_SECRET=" SECRET)
#define BASE_FILE                                                                                  \
    "SINCH_PROJECT_ID=proj-1\nSINCH_APP_ID=01APPID\nSINCH_KEY_ID=key-1\nSINCH_KEY_SECRET=" SECRET  \
    "\n"

/* Every key of PRODUCT.md's table, plus ours. */
static const char *const all_keys[] = {
    "SINCH_PROJECT_ID",
    "SINCH_APP_ID",
    "SINCH_KEY_ID",
    "SINCH_KEY_SECRET",
    "SINCH_REGION",
    "SINCH_AUTH",
    "SINCH_API_URL",
    "SINCH_AUTH_URL",
    "SINCH_WEBHOOK_SECRET",
    "SINCH_DEFAULT_CHANNEL",
    "MQTT_URL",
    "MQTT_USERNAME",
    "MQTT_PASSWORD",
    "MQTT_CLIENT_ID",
    "MQTT_CA_FILE",
    "MQTT_CERT_FILE",
    "MQTT_KEY_FILE",
    "MQTT_VERSION",
    "BRIDGE_TOPIC_PREFIX",
    "BRIDGE_SHARE_GROUP",
    "BRIDGE_LISTEN",
    "BRIDGE_WEBHOOK_PATH",
    "BRIDGE_WEBHOOK_MAX_SKEW",
    "BRIDGE_WEBHOOK_INSECURE",
    "BRIDGE_PUBLIC_URL",
    "BRIDGE_REGISTER_WEBHOOK",
    "BRIDGE_DATA_DIR",
    "BRIDGE_RATE_LIMIT",
    "BRIDGE_MAX_AGE",
    "BRIDGE_ALLOW_TO",
    "BRIDGE_CONTACTS",
    "BRIDGE_RECIPIENT_LIMIT",
    "BRIDGE_WINDOW_CHECK",
    "BRIDGE_HEALTH_INTERVAL",
    "BRIDGE_HA_DISCOVERY",
    "BRIDGE_HA_PREFIX",
    "BRIDGE_LOG_LEVEL",
    "BRIDGE_LOG_FORMAT",
    "BRIDGE_SINCH_TIMEOUT",
    "BRIDGE_SINCH_CONNECTIONS",
    "BRIDGE_RETRY_MAX_DELAY",
    "BRIDGE_MQTT_MAX_INFLIGHT",
};
#define N_ALL_KEYS (sizeof(all_keys) / sizeof(all_keys[0]))

struct loaded {
    enum sb_err err;
    struct sb_config *cfg;
    char path[64]; /* the temporary file, "" when none */
    char why[512];
};

/* Loads from `file_text` (written to a temporary file; NULL: no file) and `env` (ends with
 * NULL). The file is gone when this returns; `out->cfg` is the caller's to free. */
static void load(const char *file_text, const char *const *env, struct loaded *out)
{
    char *envp[MAX_ENV + 1] = {NULL};
    size_t n = 0;

    memset(out, 0, sizeof(*out));
    if (file_text) {
        int fd;
        size_t len = strlen(file_text);

        snprintf(out->path, sizeof(out->path), "/tmp/test_config_XXXXXX");
        fd = mkstemp(out->path);
        CHECK(fd >= 0);
        if (fd >= 0) {
            CHECK(write(fd, file_text, len) == (ssize_t)len);
            close(fd);
        }
    }
    for (; env && env[n] && n < MAX_ENV; n++) {
        envp[n] = strdup(env[n]);
    }
    out->err =
        sb_config_load(file_text ? out->path : NULL, envp, &out->cfg, out->why, sizeof(out->why));
    for (size_t i = 0; i < n; i++) {
        free(envp[i]);
    }
    if (file_text) {
        unlink(out->path);
    }
}

/* The value of a field of cfg as text, by its name in struct sb_config; NULL for a NULL string. */
static const char *field(const struct sb_config *c, const char *name, char *buf, size_t len)
{
    size_t used = 0;
    struct {
        const char *name;
        const char *value;
    } strings[] = {
        {"project_id", c->project_id},
        {"app_id", c->app_id},
        {"key_id", c->key_id},
        {"key_secret", c->key_secret},
        {"region", c->region},
        {"api_url", c->api_url},
        {"auth_url", c->auth_url},
        {"webhook_secret", c->webhook_secret},
        {"default_channel", c->default_channel},
        {"mqtt_url", c->mqtt_url},
        {"mqtt_username", c->mqtt_username},
        {"mqtt_password", c->mqtt_password},
        {"mqtt_client_id", c->mqtt_client_id},
        {"mqtt_ca_file", c->mqtt_ca_file},
        {"mqtt_cert_file", c->mqtt_cert_file},
        {"mqtt_key_file", c->mqtt_key_file},
        {"topic_prefix", c->topic_prefix},
        {"share_group", c->share_group},
        {"listen_host", c->listen_host},
        {"webhook_path", c->webhook_path},
        {"public_url", c->public_url},
        {"data_dir", c->data_dir},
        {"ha_prefix", c->ha_prefix},
    };
    struct {
        const char *name;
        long value;
    } numbers[] = {
        {"auth", (long)c->auth},
        {"sinch_timeout", c->sinch_timeout},
        {"sinch_connections", c->sinch_connections},
        {"mqtt_version", c->mqtt_version},
        {"listen_port", c->listen_port},
        {"webhook_max_skew", c->webhook_max_skew},
        {"webhook_insecure", c->webhook_insecure},
        {"register_webhook", c->register_webhook},
        {"max_age", c->max_age},
        {"retry_max_delay", c->retry_max_delay},
        {"mqtt_max_inflight", c->mqtt_max_inflight},
        {"recipient_limit", c->recipient_limit},
        {"window_check", c->window_check},
        {"health_interval", c->health_interval},
        {"ha_discovery", c->ha_discovery},
        {"log_level", (long)c->log_level},
        {"log_format", (long)c->log_format},
    };

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (strcmp(name, strings[i].name) == 0) {
            return strings[i].value;
        }
    }
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        if (strcmp(name, numbers[i].name) == 0) {
            snprintf(buf, len, "%ld", numbers[i].value);
            return buf;
        }
    }
    if (strcmp(name, "rate_limit") == 0) {
        snprintf(buf, len, "%g", c->rate_limit);
    } else if (strcmp(name, "allow_to") == 0) {
        for (size_t i = 0; i < c->n_allow_to; i++) {
            used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", c->allow_to[i]);
        }
    } else if (strcmp(name, "contacts") == 0) {
        for (size_t i = 0; i < c->n_contacts; i++) {
            used += (size_t)snprintf(buf + used, len - used, "%s%s=%s", i ? "," : "",
                                     c->contacts[i].alias, c->contacts[i].number);
        }
    } else {
        snprintf(buf, len, "?unknown field %s", name);
    }
    return buf;
}

/* ---- defaults ---- */

struct expect {
    const char *field;
    const char *value; /* NULL: the string field is NULL */
};

static const struct expect defaults[] = {
    {"project_id", "proj-1"},
    {"app_id", "01APPID"},
    {"key_id", "key-1"},
    {"key_secret", SECRET},
    {"region", "us"},
    {"auth", "0"},
    {"api_url", "https://us.conversation.api.sinch.com"},
    {"auth_url", "https://auth.sinch.com/oauth2/token"},
    {"webhook_secret", NULL},
    {"default_channel", "WHATSAPP"},
    {"sinch_timeout", "30"},
    {"sinch_connections", "16"},
    {"mqtt_url", "mqtt://127.0.0.1:1883"},
    {"mqtt_username", NULL},
    {"mqtt_password", NULL},
    {"mqtt_ca_file", NULL},
    {"mqtt_cert_file", NULL},
    {"mqtt_key_file", NULL},
    {"mqtt_version", "5"},
    {"topic_prefix", "sinch"},
    {"share_group", NULL},
    {"listen_host", "0.0.0.0"},
    {"listen_port", "8080"},
    {"webhook_path", "/webhooks/sinch"},
    {"webhook_max_skew", "300"},
    {"webhook_insecure", "0"},
    {"public_url", NULL},
    {"register_webhook", "0"},
    {"data_dir", "./data"},
    {"rate_limit", "20"},
    {"max_age", "86400"},
    {"retry_max_delay", "60"},
    {"mqtt_max_inflight", "20"},
    {"allow_to", ""},
    {"contacts", ""},
    {"recipient_limit", "0"},
    {"window_check", "0"},
    {"health_interval", "60"},
    {"ha_discovery", "0"},
    {"ha_prefix", "homeassistant"},
    {"log_level", "3"},  /* SB_LOG_INFO */
    {"log_format", "0"}, /* SB_LOG_TEXT */
};

static void check_field(const struct sb_config *cfg, const char *name, const char *want,
                        const char *row)
{
    char buf[512];
    const char *got = field(cfg, name, buf, sizeof(buf));

    if (!want) {
        CHECKF(got == NULL, "%s: %s is \"%s\", want NULL", row, name, got);
    } else {
        CHECKF(got && strcmp(got, want) == 0, "%s: %s is \"%s\", want \"%s\"", row, name,
               got ? got : "(null)", want);
    }
}

static void test_defaults(void)
{
    const char *env[] = {BASE, NULL};
    struct loaded l;

    load(NULL, env, &l);
    CHECKF(l.err == SB_OK, "%s", l.why);
    if (l.cfg) {
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
            check_field(l.cfg, defaults[i].field, defaults[i].value, "defaults");
        }
    }
    sb_config_free(l.cfg);
}

/* ---- good values from the environment ---- */

struct good {
    const char *env[4]; /* put before BASE */
    const char *field;
    const char *want;
};

static const struct good goods[] = {
    {{"SINCH_REGION=eu"}, "api_url", "https://eu.conversation.api.sinch.com"},
    {{"SINCH_REGION=br"}, "api_url", "https://br.conversation.api.sinch.com"},
    {{"SINCH_REGION=us"}, "api_url", "https://us.conversation.api.sinch.com"},
    {{"SINCH_REGION=EU"}, "region", "eu"},
    {{"SINCH_REGION=eu"}, "auth_url", "https://auth.sinch.com/oauth2/token"},
    {{"SINCH_REGION=eu", "SINCH_API_URL=http://127.0.0.1:9000/"},
     "api_url",
     "http://127.0.0.1:9000"},
    {{"SINCH_API_URL=https://proxy.example.com"}, "api_url", "https://proxy.example.com"},
    {{"SINCH_API_URL=HTTP://[::1]:8080//"}, "api_url", "http://[::1]:8080"},
    {{"SINCH_AUTH_URL=http://127.0.0.1:9000/oauth2/token"},
     "auth_url",
     "http://127.0.0.1:9000/oauth2/token"},
    {{"SINCH_AUTH=basic"}, "auth", "1"},
    {{"SINCH_AUTH=OAuth"}, "auth", "0"},
    {{"SINCH_WEBHOOK_SECRET=hmac-1"}, "webhook_secret", "hmac-1"},
    {{"SINCH_DEFAULT_CHANNEL=sms"}, "default_channel", "SMS"},
    {{"SINCH_DEFAULT_CHANNEL=Kakao_Talk"}, "default_channel", "KAKAO_TALK"},
    {{"BRIDGE_SINCH_TIMEOUT=600"}, "sinch_timeout", "600"},
    {{"BRIDGE_SINCH_TIMEOUT=1"}, "sinch_timeout", "1"},
    {{"BRIDGE_SINCH_CONNECTIONS=256"}, "sinch_connections", "256"},
    {{"MQTT_URL=mqtts://broker.example.com:8883"}, "mqtt_url", "mqtts://broker.example.com:8883"},
    {{"MQTT_URL=wss://broker.example.com/mqtt"}, "mqtt_url", "wss://broker.example.com/mqtt"},
    {{"MQTT_URL=ws://[::1]:9001"}, "mqtt_url", "ws://[::1]:9001"},
    {{"MQTT_URL=mqtt://mosquitto/"}, "mqtt_url", "mqtt://mosquitto"},
    {{"MQTT_USERNAME=bob", "MQTT_PASSWORD=pw"}, "mqtt_password", "pw"},
    {{"MQTT_VERSION=3.1.1", "MQTT_USERNAME=bob", "MQTT_PASSWORD=pw"}, "mqtt_version", "4"},
    {{"MQTT_VERSION=5"}, "mqtt_version", "5"},
    {{"MQTT_CLIENT_ID=bridge-a"}, "mqtt_client_id", "bridge-a"},
    {{"MQTT_CA_FILE=/etc/ca.pem"}, "mqtt_ca_file", "/etc/ca.pem"},
    {{"MQTT_CERT_FILE=/etc/c.pem"}, "mqtt_cert_file", "/etc/c.pem"},
    {{"MQTT_KEY_FILE=/etc/k.pem"}, "mqtt_key_file", "/etc/k.pem"},
    {{"BRIDGE_TOPIC_PREFIX=home/sinch"}, "topic_prefix", "home/sinch"},
    {{"BRIDGE_TOPIC_PREFIX="}, "topic_prefix", "sinch"}, /* empty: the default */
    {{"BRIDGE_SHARE_GROUP=g1"}, "share_group", "g1"},
    {{"BRIDGE_LISTEN=127.0.0.1:0"}, "listen_port", "0"},
    {{"BRIDGE_LISTEN=127.0.0.1:0"}, "listen_host", "127.0.0.1"},
    {{"BRIDGE_LISTEN=[::1]:9090"}, "listen_host", "::1"},
    {{"BRIDGE_LISTEN=[::]:9090"}, "listen_port", "9090"},
    {{"BRIDGE_LISTEN=localhost:65535"}, "listen_port", "65535"},
    {{"BRIDGE_WEBHOOK_PATH=/hook"}, "webhook_path", "/hook"},
    {{"BRIDGE_WEBHOOK_MAX_SKEW=86400"}, "webhook_max_skew", "86400"},
    {{"BRIDGE_WEBHOOK_INSECURE=yes"}, "webhook_insecure", "1"},
    {{"BRIDGE_PUBLIC_URL=https://bridge.example.com/", "BRIDGE_REGISTER_WEBHOOK=on"},
     "public_url",
     "https://bridge.example.com"},
    {{"BRIDGE_PUBLIC_URL=https://x.example.com/b", "BRIDGE_REGISTER_WEBHOOK=TRUE"},
     "register_webhook",
     "1"},
    {{"BRIDGE_DATA_DIR=/var/lib/sb"}, "data_dir", "/var/lib/sb"},
    {{"BRIDGE_RATE_LIMIT=0"}, "rate_limit", "0"},
    {{"BRIDGE_RATE_LIMIT=2.5"}, "rate_limit", "2.5"},
    {{"BRIDGE_MAX_AGE=1"}, "max_age", "1"},
    {{"BRIDGE_MAX_AGE=31536000"}, "max_age", "31536000"},
    {{"BRIDGE_RETRY_MAX_DELAY=3600"}, "retry_max_delay", "3600"},
    {{"BRIDGE_MQTT_MAX_INFLIGHT=1000"}, "mqtt_max_inflight", "1000"},
    {{"BRIDGE_ALLOW_TO= +46701234567 , 4670*,+1555*,"}, "allow_to", "+46701234567,+4670*,+1555*"},
    {{"BRIDGE_CONTACTS=mom=+46701234567, ops = 15551234567"},
     "contacts",
     "mom=+46701234567,ops=+15551234567"},
    {{"BRIDGE_CONTACTS=a_b-1=46701234567"}, "contacts", "a_b-1=+46701234567"},
    {{"BRIDGE_RECIPIENT_LIMIT=10"}, "recipient_limit", "10"},
    {{"BRIDGE_WINDOW_CHECK=1"}, "window_check", "1"},
    {{"BRIDGE_WINDOW_CHECK=off"}, "window_check", "0"},
    {{"BRIDGE_HEALTH_INTERVAL=0"}, "health_interval", "0"},
    {{"BRIDGE_HA_DISCOVERY=true"}, "ha_discovery", "1"},
    {{"BRIDGE_HA_DISCOVERY=No"}, "ha_discovery", "0"},
    {{"BRIDGE_HA_PREFIX=ha"}, "ha_prefix", "ha"},
    {{"BRIDGE_LOG_LEVEL=debug"}, "log_level", "4"},
    {{"BRIDGE_LOG_LEVEL=ERROR"}, "log_level", "0"},
    {{"BRIDGE_LOG_FORMAT=json"}, "log_format", "1"},
    /* Not ours: ignored. */
    {{"HOME=/root", "SINCHY=1", "MQTTX_URL=x", "NOEQUALS"}, "mqtt_url", "mqtt://127.0.0.1:1883"},
    /* Two of one name: the first wins, like getenv(). */
    {{"BRIDGE_HA_PREFIX=one", "BRIDGE_HA_PREFIX=two"}, "ha_prefix", "one"},
};

static void test_goods(void)
{
    for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
        const char *base[] = {BASE};
        const char *env[MAX_ENV];
        size_t n = 0;
        char row[64];
        struct loaded l;

        /* The row's entries first: of two entries of one name the first wins. */
        for (size_t j = 0; j < 4 && goods[i].env[j]; j++) {
            env[n++] = goods[i].env[j];
        }
        for (size_t j = 0; j < 4; j++) {
            env[n++] = base[j];
        }
        env[n] = NULL;
        snprintf(row, sizeof(row), "good row %zu", i);
        load(NULL, env, &l);
        CHECKF(l.err == SB_OK, "%s: %s", row, l.why);
        if (l.cfg) {
            check_field(l.cfg, goods[i].field, goods[i].want, row);
        }
        sb_config_free(l.cfg);
    }
}

/* ---- bad values from the environment ---- */

struct bad {
    const char *env[4]; /* put before BASE, or instead of it with `no_base` */
    const char *key;    /* must be in why */
    const char *also;   /* and this too, when not NULL */
    bool no_base;
};

static const struct bad bads[] = {
    {{"SINCH_APP_ID=a", "SINCH_KEY_ID=k", "SINCH_KEY_SECRET=" SECRET},
     "SINCH_PROJECT_ID",
     "required",
     true},
    {{"SINCH_PROJECT_ID=p", "SINCH_KEY_ID=k", "SINCH_KEY_SECRET=" SECRET},
     "SINCH_APP_ID",
     "required",
     true},
    {{"SINCH_PROJECT_ID=p", "SINCH_APP_ID=a", "SINCH_KEY_SECRET=" SECRET},
     "SINCH_KEY_ID",
     "oauth",
     true},
    {{"SINCH_PROJECT_ID=p", "SINCH_APP_ID=a", "SINCH_KEY_ID=k", "SINCH_AUTH=basic"},
     "SINCH_KEY_SECRET",
     "basic",
     true},
    {{"SINCH_PROJECT_ID=p", "SINCH_APP_ID=a", "SINCH_KEY_ID=k", "SINCH_KEY_SECRET="},
     "SINCH_KEY_SECRET",
     NULL,
     true},
    {{"SINCH_PROJECT_ID=a/b"}, "SINCH_PROJECT_ID", NULL, false},
    {{"SINCH_APP_ID=a b"}, "SINCH_APP_ID", NULL, false},
    {{"SINCH_KEY_ID=a:b"}, "SINCH_KEY_ID", NULL, false},
    {{"SINCH_REGION=ap"}, "SINCH_REGION", "\"ap\"", false},
    {{"SINCH_AUTH=token"}, "SINCH_AUTH", "oauth, basic", false},
    {{"SINCH_API_URL=ftp://x"}, "SINCH_API_URL", "http://", false},
    {{"SINCH_API_URL=https://host/v1"}, "SINCH_API_URL", "path", false},
    {{"SINCH_API_URL=https://host?x=1"}, "SINCH_API_URL", NULL, false},
    {{"SINCH_API_URL=https://"}, "SINCH_API_URL", "host", false},
    {{"SINCH_API_URL=https://user:pw@host"}, "SINCH_API_URL", "credentials", false},
    {{"SINCH_API_URL=http://host:0"}, "SINCH_API_URL", "port", false},
    {{"SINCH_API_URL=http://host:99999"}, "SINCH_API_URL", "port", false},
    {{"SINCH_API_URL=http://host:"}, "SINCH_API_URL", "port", false},
    {{"SINCH_API_URL=proxy.example.com"}, "SINCH_API_URL", NULL, false},
    {{"SINCH_API_URL=https://ho st"}, "SINCH_API_URL", NULL, false},
    {{"SINCH_API_URL=https://[::1"}, "SINCH_API_URL", NULL, false},
    {{"SINCH_AUTH_URL=ftp://x/token"}, "SINCH_AUTH_URL", NULL, false},
    {{"SINCH_AUTH_URL=auth.sinch.com/oauth2/token"}, "SINCH_AUTH_URL", NULL, false},
    {{"SINCH_DEFAULT_CHANNEL=WHATS APP"}, "SINCH_DEFAULT_CHANNEL", NULL, false},
    {{"SINCH_DEFAULT_CHANNEL=SMS1"}, "SINCH_DEFAULT_CHANNEL", NULL, false},
    {{"BRIDGE_SINCH_TIMEOUT=0"}, "BRIDGE_SINCH_TIMEOUT", "1..600", false},
    {{"BRIDGE_SINCH_TIMEOUT=601"}, "BRIDGE_SINCH_TIMEOUT", NULL, false},
    {{"BRIDGE_SINCH_CONNECTIONS=0"}, "BRIDGE_SINCH_CONNECTIONS", NULL, false},
    {{"BRIDGE_SINCH_CONNECTIONS=257"}, "BRIDGE_SINCH_CONNECTIONS", NULL, false},
    {{"MQTT_URL=tcp://h:1883"}, "MQTT_URL", "mqtt://", false},
    {{"MQTT_URL=mqtt://"}, "MQTT_URL", "host", false},
    {{"MQTT_URL=mqtt://h:port"}, "MQTT_URL", "port", false},
    {{"MQTT_URL=mqtt://h/path"}, "MQTT_URL", "path", false},
    {{"MQTT_URL=mqtt://u:" SECRET "@h"}, "MQTT_URL", "credentials", false},
    {{"MQTT_VERSION=4"}, "MQTT_VERSION", "3.1.1", false},
    {{"MQTT_VERSION=3"}, "MQTT_VERSION", NULL, false},
    {{"MQTT_VERSION=5.0"}, "MQTT_VERSION", NULL, false},
    {{"MQTT_VERSION=3.1.1", "MQTT_PASSWORD=" SECRET}, "MQTT_PASSWORD", "MQTT_USERNAME", false},
    {{"MQTT_CLIENT_ID=a\tb"}, "MQTT_CLIENT_ID", NULL, false},
    {{"BRIDGE_TOPIC_PREFIX=a/+/b"}, "BRIDGE_TOPIC_PREFIX", "wildcard", false},
    {{"BRIDGE_TOPIC_PREFIX=#"}, "BRIDGE_TOPIC_PREFIX", NULL, false},
    {{"BRIDGE_TOPIC_PREFIX=/sinch"}, "BRIDGE_TOPIC_PREFIX", "'/'", false},
    {{"BRIDGE_TOPIC_PREFIX=sinch/"}, "BRIDGE_TOPIC_PREFIX", "'/'", false},
    {{"BRIDGE_TOPIC_PREFIX=$SYS"}, "BRIDGE_TOPIC_PREFIX", "'$'", false},
    /* Latin-1, not UTF-8: the broker would refuse every topic (found by fuzz_config). */
    {{"BRIDGE_TOPIC_PREFIX=k\xf6k"}, "BRIDGE_TOPIC_PREFIX", "UTF-8", false},
    {{"BRIDGE_HA_PREFIX=ha/\xc3"}, "BRIDGE_HA_PREFIX", "UTF-8", false},
    {{"BRIDGE_SHARE_GROUP=g\xff"}, "BRIDGE_SHARE_GROUP", "UTF-8", false},
    {{"MQTT_CLIENT_ID=bridge-\xe9"}, "MQTT_CLIENT_ID", "UTF-8", false},
    {{"BRIDGE_SHARE_GROUP=a/b"}, "BRIDGE_SHARE_GROUP", NULL, false},
    {{"BRIDGE_SHARE_GROUP=a+b"}, "BRIDGE_SHARE_GROUP", NULL, false},
    {{"BRIDGE_SHARE_GROUP=g#"}, "BRIDGE_SHARE_GROUP", NULL, false},
    {{"BRIDGE_LISTEN=8080"}, "BRIDGE_LISTEN", NULL, false},
    {{"BRIDGE_LISTEN=:8080"}, "BRIDGE_LISTEN", NULL, false},
    {{"BRIDGE_LISTEN=host:"}, "BRIDGE_LISTEN", "port", false},
    {{"BRIDGE_LISTEN=host:65536"}, "BRIDGE_LISTEN", "port", false},
    {{"BRIDGE_LISTEN=host:-1"}, "BRIDGE_LISTEN", "port", false},
    {{"BRIDGE_LISTEN=::1:8080"}, "BRIDGE_LISTEN", "brackets", false},
    {{"BRIDGE_LISTEN=[::1]8080"}, "BRIDGE_LISTEN", NULL, false},
    {{"BRIDGE_LISTEN=[zz]:80"}, "BRIDGE_LISTEN", NULL, false},
    {{"BRIDGE_LISTEN=bad host:80"}, "BRIDGE_LISTEN", "host", false},
    {{"BRIDGE_WEBHOOK_PATH=hook"}, "BRIDGE_WEBHOOK_PATH", NULL, false},
    {{"BRIDGE_WEBHOOK_PATH=/a b"}, "BRIDGE_WEBHOOK_PATH", NULL, false},
    {{"BRIDGE_WEBHOOK_PATH=/a?b"}, "BRIDGE_WEBHOOK_PATH", NULL, false},
    {{"BRIDGE_WEBHOOK_MAX_SKEW=0"}, "BRIDGE_WEBHOOK_MAX_SKEW", "1..86400", false},
    {{"BRIDGE_WEBHOOK_MAX_SKEW=86401"}, "BRIDGE_WEBHOOK_MAX_SKEW", NULL, false},
    {{"BRIDGE_WEBHOOK_MAX_SKEW=abc"}, "BRIDGE_WEBHOOK_MAX_SKEW", "whole number", false},
    {{"BRIDGE_WEBHOOK_MAX_SKEW=10s"}, "BRIDGE_WEBHOOK_MAX_SKEW", NULL, false},
    {{"BRIDGE_WEBHOOK_MAX_SKEW= 5"}, "BRIDGE_WEBHOOK_MAX_SKEW", NULL, false},
    {{"BRIDGE_WEBHOOK_MAX_SKEW=0x10"}, "BRIDGE_WEBHOOK_MAX_SKEW", NULL, false},
    {{"BRIDGE_WEBHOOK_MAX_SKEW=99999999999999999999999"}, "BRIDGE_WEBHOOK_MAX_SKEW", NULL, false},
    {{"BRIDGE_WEBHOOK_INSECURE=y"}, "BRIDGE_WEBHOOK_INSECURE", NULL, false},
    {{"BRIDGE_REGISTER_WEBHOOK=1"}, "BRIDGE_REGISTER_WEBHOOK", "BRIDGE_PUBLIC_URL", false},
    {{"BRIDGE_PUBLIC_URL=https://x/?a=1"}, "BRIDGE_PUBLIC_URL", NULL, false},
    {{"BRIDGE_PUBLIC_URL=bridge.example.com"}, "BRIDGE_PUBLIC_URL", NULL, false},
    {{"BRIDGE_RATE_LIMIT=-1"}, "BRIDGE_RATE_LIMIT", NULL, false},
    {{"BRIDGE_RATE_LIMIT=abc"}, "BRIDGE_RATE_LIMIT", NULL, false},
    {{"BRIDGE_RATE_LIMIT=nan"}, "BRIDGE_RATE_LIMIT", NULL, false},
    {{"BRIDGE_RATE_LIMIT=inf"}, "BRIDGE_RATE_LIMIT", NULL, false},
    {{"BRIDGE_RATE_LIMIT=1e7"}, "BRIDGE_RATE_LIMIT", NULL, false},
    {{"BRIDGE_RATE_LIMIT=0x10"}, "BRIDGE_RATE_LIMIT", NULL, false},
    {{"BRIDGE_RATE_LIMIT=2.5/s"}, "BRIDGE_RATE_LIMIT", NULL, false},
    {{"BRIDGE_MAX_AGE=0"}, "BRIDGE_MAX_AGE", NULL, false},
    {{"BRIDGE_MAX_AGE=31536001"}, "BRIDGE_MAX_AGE", NULL, false},
    {{"BRIDGE_RETRY_MAX_DELAY=0"}, "BRIDGE_RETRY_MAX_DELAY", NULL, false},
    {{"BRIDGE_RETRY_MAX_DELAY=3601"}, "BRIDGE_RETRY_MAX_DELAY", NULL, false},
    {{"BRIDGE_MQTT_MAX_INFLIGHT=0"}, "BRIDGE_MQTT_MAX_INFLIGHT", NULL, false},
    {{"BRIDGE_MQTT_MAX_INFLIGHT=65536"}, "BRIDGE_MQTT_MAX_INFLIGHT", NULL, false},
    {{"BRIDGE_HEALTH_INTERVAL=-1"}, "BRIDGE_HEALTH_INTERVAL", NULL, false},
    {{"BRIDGE_HEALTH_INTERVAL=86401"}, "BRIDGE_HEALTH_INTERVAL", NULL, false},
    {{"BRIDGE_RECIPIENT_LIMIT=-1"}, "BRIDGE_RECIPIENT_LIMIT", NULL, false},
    {{"BRIDGE_WINDOW_CHECK=maybe"}, "BRIDGE_WINDOW_CHECK", NULL, false},
    {{"BRIDGE_HA_DISCOVERY=2"}, "BRIDGE_HA_DISCOVERY", NULL, false},
    {{"BRIDGE_HA_PREFIX=ha/#"}, "BRIDGE_HA_PREFIX", NULL, false},
    {{"BRIDGE_LOG_LEVEL=verbose"}, "BRIDGE_LOG_LEVEL", "error, warn, notice, info, debug", false},
    {{"BRIDGE_LOG_FORMAT=xml"}, "BRIDGE_LOG_FORMAT", NULL, false},
    {{"BRIDGE_ALLOW_TO=abc"}, "BRIDGE_ALLOW_TO", "\"abc\"", false},
    {{"BRIDGE_ALLOW_TO=+0123456789"}, "BRIDGE_ALLOW_TO", NULL, false},
    {{"BRIDGE_ALLOW_TO=+1234567"}, "BRIDGE_ALLOW_TO", NULL, false},
    {{"BRIDGE_ALLOW_TO=46*7"}, "BRIDGE_ALLOW_TO", NULL, false},
    {{"BRIDGE_ALLOW_TO=*"}, "BRIDGE_ALLOW_TO", NULL, false},
    {{"BRIDGE_ALLOW_TO=0*"}, "BRIDGE_ALLOW_TO", NULL, false},
    {{"BRIDGE_ALLOW_TO= , "}, "BRIDGE_ALLOW_TO", "no number", false},
    {{"BRIDGE_CONTACTS=Mom=+46701234567"}, "BRIDGE_CONTACTS", "\"Mom\"", false},
    {{"BRIDGE_CONTACTS=mom"}, "BRIDGE_CONTACTS", "alias=number", false},
    {{"BRIDGE_CONTACTS=mom=123"}, "BRIDGE_CONTACTS", "E.164", false},
    {{"BRIDGE_CONTACTS==+46701234567"}, "BRIDGE_CONTACTS", NULL, false},
    {{"BRIDGE_CONTACTS=mom=+46701234567,mom=+15551234567"}, "BRIDGE_CONTACTS", "twice", false},
    {{"BRIDGE_CONTACTS=a=+46701234567,b=46701234567"}, "BRIDGE_CONTACTS", "two aliases", false},
    {{"BRIDGE_CONTACTS=123=+46701234567"}, "BRIDGE_CONTACTS", "digits", false},
    {{"BRIDGE_CONTACTS=m.m=+46701234567"}, "BRIDGE_CONTACTS", NULL, false},
    {{"BRIDGE_CONTACTS=abcdefghijabcdefghijabcdefghijabc=+46701234567"},
     "BRIDGE_CONTACTS",
     NULL,
     false},
    /* Unknown keys of ours: typos. */
    {{"SINCH_PROJECT=x"}, "SINCH_PROJECT", "unknown key", false},
    {{"SINCH_PROJET_ID=x"}, "SINCH_PROJET_ID", "did you mean SINCH_PROJECT_ID", false},
    {{"MQTT_HOST=broker"}, "MQTT_HOST", "unknown key", false},
    {{"BRIDGE_FOO="}, "BRIDGE_FOO", "unknown key", false},
    {{"sinch_app_id=x"}, "sinch_app_id", "did you mean SINCH_APP_ID", false},
};

static void test_bads(void)
{
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        const char *base[] = {BASE};
        const char *env[MAX_ENV];
        size_t n = 0;
        struct loaded l;

        for (size_t j = 0; j < 4 && bads[i].env[j]; j++) {
            env[n++] = bads[i].env[j];
        }
        for (size_t j = 0; j < 4 && !bads[i].no_base; j++) {
            env[n++] = base[j];
        }
        env[n] = NULL;
        load(NULL, env, &l);
        if (getenv("SB_TEST_VERBOSE")) {
            printf("bad row %zu: %s\n", i, l.why); /* to read the messages as a user would */
        }
        CHECKF(l.err == SB_E_CONFIG, "bad row %zu (%s) loaded", i, bads[i].env[0]);
        CHECKF(l.cfg == NULL, "bad row %zu: a config came back", i);
        CHECKF(strstr(l.why, bads[i].key) != NULL, "bad row %zu: \"%s\" does not name %s", i, l.why,
               bads[i].key);
        CHECKF(!bads[i].also || strstr(l.why, bads[i].also), "bad row %zu: \"%s\" lacks \"%s\"", i,
               l.why, bads[i].also);
        CHECKF(strstr(l.why, SECRET) == NULL, "bad row %zu: the secret leaked: %s", i, l.why);
        sb_config_free(l.cfg);
    }
}

/* ---- dotenv files ---- */

struct file_good {
    const char *text; /* appended to BASE_FILE */
    const char *field;
    const char *want;
};

static const struct file_good file_goods[] = {
    {"SINCH_DEFAULT_CHANNEL=\"sms\"\n", "default_channel", "SMS"},
    {"export BRIDGE_TOPIC_PREFIX=home\n", "topic_prefix", "home"},
    {"export\tBRIDGE_TOPIC_PREFIX=home\n", "topic_prefix", "home"},
    {"BRIDGE_TOPIC_PREFIX='a b\"c'\n", "topic_prefix", "a b\"c"},
    {"MQTT_USERNAME='a\\nb#c'  # literal\n", "mqtt_username", "a\\nb#c"},
    {"MQTT_PASSWORD=\"p\\n\\\"x\\\\\\t\"\n", "mqtt_password", "p\n\"x\\\t"},
    {"MQTT_USERNAME=\"a # b\"\n", "mqtt_username", "a # b"},
    {"MQTT_USERNAME=home # a comment\n", "mqtt_username", "home"},
    {"MQTT_USERNAME=ho#me\n", "mqtt_username", "ho#me"},
    {"MQTT_USERNAME=bob   \t\n", "mqtt_username", "bob"},
    {"  MQTT_USERNAME = bob\n", "mqtt_username", "bob"},
    {"MQTT_USERNAME=bob\r\n", "mqtt_username", "bob"},
    {"MQTT_USERNAME=\"bob\" # c\n", "mqtt_username", "bob"},
    {"MQTT_USERNAME=it's\n", "mqtt_username", "it's"},
    {"MQTT_USERNAME=a=b\n", "mqtt_username", "a=b"},
    {"MQTT_USERNAME=\n", "mqtt_username", NULL},
    {"MQTT_USERNAME=\"\"\n", "mqtt_username", NULL},
    {"# a comment\n\n   \n\t# another\nMQTT_USERNAME=x\n", "mqtt_username", "x"},
    {"MQTT_USERNAME=x", "mqtt_username", "x"}, /* no newline at the end */
    {"OTHER_PROGRAM=1\nPATH=/bin\n", "mqtt_url", "mqtt://127.0.0.1:1883"},
    {"MQTT_USERNAME=first\nMQTT_USERNAME=last\n", "mqtt_username", "last"},
    {"MQTT_USERNAME=first\nMQTT_USERNAME=\n", "mqtt_username", "first"},
    {"BRIDGE_CONTACTS=\"mom=+46701234567, dad=+46701234568\"\n", "contacts",
     "mom=+46701234567,dad=+46701234568"},
};

static void test_file_goods(void)
{
    for (size_t i = 0; i < sizeof(file_goods) / sizeof(file_goods[0]); i++) {
        char text[1024];
        char row[64];
        struct loaded l;

        snprintf(text, sizeof(text), "%s%s", BASE_FILE, file_goods[i].text);
        snprintf(row, sizeof(row), "file row %zu", i);
        load(text, NULL, &l);
        CHECKF(l.err == SB_OK, "%s: %s", row, l.why);
        if (l.cfg) {
            check_field(l.cfg, file_goods[i].field, file_goods[i].want, row);
        }
        sb_config_free(l.cfg);
    }

    /* A UTF-8 byte order mark before the first key. */
    {
        struct loaded l;
        load("\xEF\xBB\xBF" BASE_FILE, NULL, &l);
        CHECKF(l.err == SB_OK, "BOM: %s", l.why);
        sb_config_free(l.cfg);
    }
}

struct file_bad {
    const char *line; /* becomes line 5, after BASE_FILE */
    const char *also; /* must be in why besides "path:5:", when not NULL */
};

static const struct file_bad file_bads[] = {
    {"MQTT_USERNAME=\"bob\n", "MQTT_USERNAME"},
    {"MQTT_USERNAME='bob\n", "MQTT_USERNAME"},
    {"MQTT_USERNAME=\"bob\"x\n", "after the closing quote"},
    {"MQTT_USERNAME='bob' x\n", "after the closing quote"},
    {"MQTT_USERNAME=\"a\\qb\"\n", "escape"},
    {"MQTT_USERNAME=\"a\\\n", NULL},
    {"just some text\n", "KEY=value"},
    {"1KEY=x\n", NULL},
    {"MY-KEY=x\n", NULL},
    {"=value\n", NULL},
    {"export\n", NULL},
    {"SINCH_KEY_SECRET=\"" SECRET "\n", "SINCH_KEY_SECRET"},
    {"SINCH_KEY_SECRET " SECRET "\n", NULL},
    {"SINCH_KEY_SECRET='" SECRET "'junk\n", "SINCH_KEY_SECRET"},
    {"SINCH_PROJET_ID=x\n", "did you mean SINCH_PROJECT_ID"},
    {"MQTT_SERVER=x\n", "MQTT_SERVER"},
    {"BRIDGE_MAX_AGE=0\n", "BRIDGE_MAX_AGE"},
    {"SINCH_REGION=\"mars\"\n", "SINCH_REGION"},
    {"BRIDGE_CONTACTS=Mom=+46701234567\n", "BRIDGE_CONTACTS"},
};

static void test_file_bads(void)
{
    for (size_t i = 0; i < sizeof(file_bads) / sizeof(file_bads[0]); i++) {
        char text[1024];
        char where[80];
        struct loaded l;

        snprintf(text, sizeof(text), "%s%s", BASE_FILE, file_bads[i].line);
        load(text, NULL, &l);
        if (getenv("SB_TEST_VERBOSE")) {
            printf("file bad row %zu: %s\n", i, l.why);
        }
        snprintf(where, sizeof(where), "%s:5: ", l.path);
        CHECKF(l.err == SB_E_CONFIG, "file bad row %zu loaded", i);
        CHECKF(l.cfg == NULL, "file bad row %zu: a config came back", i);
        CHECKF(strncmp(l.why, where, strlen(where)) == 0, "file bad row %zu: \"%s\" lacks %s", i,
               l.why, where);
        CHECKF(!file_bads[i].also || strstr(l.why, file_bads[i].also),
               "file bad row %zu: \"%s\" lacks \"%s\"", i, l.why, file_bads[i].also);
        CHECKF(strstr(l.why, SECRET) == NULL, "file bad row %zu: the secret leaked: %s", i, l.why);
        sb_config_free(l.cfg);
    }
}

static enum sb_err count_pairs(const char *key, const char *value, unsigned line, void *arg,
                               char *why, size_t why_len)
{
    (void)key;
    (void)value;
    (void)line;
    (void)why;
    (void)why_len;
    (*(int *)arg)++;
    return SB_OK;
}

static void test_dotenv_edges(void)
{
    static const char with_nul[] = "A=1\nB=2\0x\nC=3\n";
    char why[256] = "";
    int pairs = 0;

    /* A NUL byte stops the parse at its line. */
    CHECK(sb_dotenv_parse(with_nul, sizeof(with_nul) - 1, "f.env", count_pairs, &pairs, why,
                          sizeof(why)) == SB_E_CONFIG);
    CHECK(pairs == 1);
    CHECK(strstr(why, "f.env:2:") != NULL);

    pairs = 0;
    CHECK(sb_dotenv_parse("", 0, "e.env", count_pairs, &pairs, why, sizeof(why)) == SB_OK);
    CHECK(pairs == 0);
    /* Not NUL-terminated: only `len` bytes count. */
    CHECK(sb_dotenv_parse("A=1\nB=2", 3, "e.env", count_pairs, &pairs, why, sizeof(why)) == SB_OK);
    CHECK(pairs == 1);
    CHECK(sb_dotenv_read("/nonexistent/sb.env", count_pairs, &pairs, why, sizeof(why)) == SB_E_IO);
    CHECK(strstr(why, "/nonexistent/sb.env") != NULL);

    /* A file over SB_DOTENV_MAX_BYTES is refused whole. */
    {
        size_t big = SB_DOTENV_MAX_BYTES + 2;
        char *text = malloc(big + 1);
        struct loaded l;

        CHECK(text != NULL);
        if (text) {
            for (size_t i = 0; i < big; i += 2) {
                text[i] = '#';
                text[i + 1] = '\n';
            }
            text[big] = '\0';
            load(text, NULL, &l);
            CHECK(l.err == SB_E_CONFIG);
            CHECKF(strstr(l.why, "larger") != NULL, "%s", l.why);
            sb_config_free(l.cfg);
            free(text);
        }
    }
}

static void test_env_over_file(void)
{
    struct loaded l;

    {
        const char *env[] = {"BRIDGE_TOPIC_PREFIX=env", NULL};
        load(BASE_FILE "BRIDGE_TOPIC_PREFIX=file\n", env, &l);
        CHECKF(l.err == SB_OK, "%s", l.why);
        CHECK(l.cfg && strcmp(l.cfg->topic_prefix, "env") == 0);
        sb_config_free(l.cfg);
    }
    {
        /* An empty value in the environment is "not set": the file's value stays. */
        const char *env[] = {"BRIDGE_TOPIC_PREFIX=", NULL};
        load(BASE_FILE "BRIDGE_TOPIC_PREFIX=file\n", env, &l);
        CHECKF(l.err == SB_OK, "%s", l.why);
        CHECK(l.cfg && strcmp(l.cfg->topic_prefix, "file") == 0);
        sb_config_free(l.cfg);
    }
    {
        /* A bad value in the file that the environment overrides is never parsed. */
        const char *env[] = {"BRIDGE_MAX_AGE=5", NULL};
        load(BASE_FILE "BRIDGE_MAX_AGE=0\n", env, &l);
        CHECKF(l.err == SB_OK, "%s", l.why);
        CHECK(l.cfg && l.cfg->max_age == 5);
        sb_config_free(l.cfg);
    }
    {
        /* A bad value from the environment names the key, not the file. */
        const char *env[] = {"BRIDGE_MAX_AGE=0", NULL};
        load(BASE_FILE "BRIDGE_MAX_AGE=5\n", env, &l);
        CHECK(l.err == SB_E_CONFIG);
        CHECKF(strncmp(l.why, "BRIDGE_MAX_AGE: ", 16) == 0, "%s", l.why);
        sb_config_free(l.cfg);
    }
    {
        /* The required keys may come from both. */
        const char *env[] = {"SINCH_APP_ID=from-env", "SINCH_KEY_SECRET=" SECRET, NULL};
        load("SINCH_PROJECT_ID=p\nSINCH_KEY_ID=k\n", env, &l);
        CHECKF(l.err == SB_OK, "%s", l.why);
        CHECK(l.cfg && strcmp(l.cfg->app_id, "from-env") == 0);
        CHECK(l.cfg && strcmp(l.cfg->key_secret, SECRET) == 0);
        sb_config_free(l.cfg);
    }
    {
        /* A file that cannot be read. */
        char *env[] = {NULL};
        char why[256];
        struct sb_config dummy;
        struct sb_config *cfg = &dummy;
        CHECK(sb_config_load("/nonexistent/sb.env", env, &cfg, why, sizeof(why)) == SB_E_CONFIG);
        CHECK(cfg == NULL);
        CHECKF(strstr(why, "/nonexistent/sb.env") != NULL, "%s", why);
    }
    {
        /* A secret as the value of a key the file then breaks: still not in the message. */
        const char *env[] = {"SINCH_WEBHOOK_SECRET=" SECRET, "MQTT_PASSWORD=" SECRET, NULL};
        load(BASE_FILE "BRIDGE_LISTEN=nowhere\n", env, &l);
        CHECK(l.err == SB_E_CONFIG);
        CHECK(strstr(l.why, "BRIDGE_LISTEN") != NULL);
        CHECK(strstr(l.why, SECRET) == NULL);
        sb_config_free(l.cfg);
    }
}

/* ---- E.164 ---- */

struct e164_row {
    const char *in;
    const char *want; /* NULL: refused */
};

static const struct e164_row e164_rows[] = {
    {"+46701234567", "+46701234567"},
    {"46701234567", "+46701234567"},
    {"12345678", "+12345678"},
    {"+123456789012345", "+123456789012345"},
    {"", NULL},
    {"+", NULL},
    {"1234567", NULL},
    {"+1234567890123456", NULL},
    {"+0123456789", NULL},
    {"0123456789", NULL},
    {"+46 70 123 45 67", NULL},
    {"+46-701234567", NULL},
    {"++46701234567", NULL},
    {"46701234567a", NULL},
    {" 46701234567", NULL},
    {"46701234567\n", NULL},
    {"+4670123456\xc2\xb2", NULL},
};

static void test_e164(void)
{
    char buf[32];

    for (size_t i = 0; i < sizeof(e164_rows) / sizeof(e164_rows[0]); i++) {
        bool ok = sb_e164_normalise(e164_rows[i].in, buf, sizeof(buf));
        if (e164_rows[i].want) {
            CHECKF(ok && strcmp(buf, e164_rows[i].want) == 0, "e164 row %zu (%s)", i,
                   e164_rows[i].in);
        } else {
            CHECKF(!ok, "e164 row %zu (%s) accepted", i, e164_rows[i].in);
        }
    }
    CHECK(!sb_e164_normalise(NULL, buf, sizeof(buf)));
    CHECK(sb_e164_normalise("123456789012345", buf, 17));
    CHECK(!sb_e164_normalise("123456789012345", buf, 16)); /* no room for '+' and NUL */
    snprintf(buf, sizeof(buf), "46701234567");
    CHECK(sb_e164_normalise(buf, buf, sizeof(buf))); /* in place */
    CHECKF(strcmp(buf, "+46701234567") == 0, "in place: %s", buf);
}

/* ---- lookups ---- */

static void test_lookups(void)
{
    const char *env[] = {BASE, "BRIDGE_CONTACTS=mom=+46701234567,ops=15551234567",
                         "BRIDGE_ALLOW_TO=+4670*,+15551234567", NULL};
    const char *open_env[] = {BASE, NULL};
    struct loaded l;
    struct loaded o;

    load(NULL, env, &l);
    CHECKF(l.err == SB_OK, "%s", l.why);
    if (l.cfg) {
        CHECK_STR(sb_config_alias_of(l.cfg, "+46701234567"), "mom");
        CHECK_STR(sb_config_alias_of(l.cfg, "46701234567"), "mom");
        CHECK_STR(sb_config_alias_of(l.cfg, "+15551234567"), "ops");
        CHECK(sb_config_alias_of(l.cfg, "+15550000000") == NULL);
        CHECK(sb_config_alias_of(l.cfg, "mom") == NULL);
        CHECK(sb_config_alias_of(l.cfg, NULL) == NULL);
        CHECK_STR(sb_config_number_of(l.cfg, "mom"), "+46701234567");
        CHECK_STR(sb_config_number_of(l.cfg, "ops"), "+15551234567");
        CHECK(sb_config_number_of(l.cfg, "MOM") == NULL);
        CHECK(sb_config_number_of(l.cfg, "dad") == NULL);
        CHECK(sb_config_number_of(l.cfg, NULL) == NULL);

        CHECK(sb_config_allowed(l.cfg, "+46701234567"));
        CHECK(sb_config_allowed(l.cfg, "4670999999"));
        CHECK(sb_config_allowed(l.cfg, "+15551234567"));
        CHECK(!sb_config_allowed(l.cfg, "+46711234567"));
        CHECK(!sb_config_allowed(l.cfg, "+155512345678")); /* longer: not the listed number */
        CHECK(!sb_config_allowed(l.cfg, "+15551234568"));
        CHECK(!sb_config_allowed(l.cfg, "+4670"));
        CHECK(!sb_config_allowed(l.cfg, "garbage"));
        CHECK(!sb_config_allowed(l.cfg, NULL));
    }
    sb_config_free(l.cfg);

    load(NULL, open_env, &o);
    CHECKF(o.err == SB_OK, "%s", o.why);
    if (o.cfg) {
        CHECK(sb_config_allowed(o.cfg, "+15551234567")); /* no list: everyone */
        CHECK(sb_config_alias_of(o.cfg, "+15551234567") == NULL);
        CHECK(sb_config_number_of(o.cfg, "mom") == NULL);
    }
    sb_config_free(o.cfg);
    CHECK(sb_config_alias_of(NULL, "+15551234567") == NULL);
    CHECK(sb_config_number_of(NULL, "mom") == NULL);
    CHECK(!sb_config_allowed(NULL, "+15551234567"));
}

/* ---- the default client id ---- */

static void expected_client_id(const char *prefix, char *out, size_t len)
{
    char host[256] = "";

    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0') {
        snprintf(host, sizeof(host), "localhost");
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(out, len, "sinch-bridge-%s-%s", prefix, host);
    if (strlen(out) > 64) {
        out[64] = '\0';
    }
    for (char *p = out; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.')) {
            *p = '-';
        }
    }
}

static void test_client_id(void)
{
    static const char long_prefix[] = "a-very-long-topic-prefix-that-goes-on-and-on-and-on-and-on";
    struct {
        const char *env;
        const char *prefix;
    } rows[] = {
        {NULL, "sinch"},
        {"BRIDGE_TOPIC_PREFIX=home/sinch", "home-sinch"},
        {"BRIDGE_TOPIC_PREFIX=a-very-long-topic-prefix-that-goes-on-and-on-and-on-and-on",
         long_prefix},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *env[] = {BASE, rows[i].env, NULL};
        char want[512];
        struct loaded l;

        expected_client_id(rows[i].prefix, want, sizeof(want));
        load(NULL, env, &l);
        CHECKF(l.err == SB_OK, "%s", l.why);
        if (l.cfg) {
            CHECKF(strcmp(l.cfg->mqtt_client_id, want) == 0, "client id %s, want %s",
                   l.cfg->mqtt_client_id, want);
            CHECK(strlen(l.cfg->mqtt_client_id) <= 64);
            CHECK(strncmp(l.cfg->mqtt_client_id, "sinch-bridge-", 13) == 0);
        }
        sb_config_free(l.cfg);
    }
}

/* ---- --help and the key list ---- */

static void test_help(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    size_t entries = 0;

    CHECK(f != NULL);
    if (!f) {
        return;
    }
    sb_config_print_help(f);
    fclose(f);
    for (size_t i = 0; i < N_ALL_KEYS; i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "\n  %s (", all_keys[i]);
        CHECKF(strstr(text, needle) != NULL, "help lacks %s", all_keys[i]);
    }
    for (const char *p = text; (p = strstr(p, "\n  ")) != NULL; p += 3) {
        entries += p[3] >= 'A' && p[3] <= 'Z';
    }
    CHECKF(entries == N_ALL_KEYS, "help has %zu keys, the list %zu", entries, N_ALL_KEYS);
    CHECK(strstr(text, "SINCH_PROJECT_ID (required)") != NULL);
    CHECK(strstr(text, "SINCH_REGION (default: us)") != NULL);
    CHECK(strstr(text, "MQTT_URL (default: mqtt://127.0.0.1:1883)") != NULL);
    CHECK(strstr(text, "SINCH_API_URL (default: https://<region>.conversation.api.sinch.com)"));
    CHECK(strstr(text, "[1..600]") != NULL);
    CHECK(strstr(text, "[5|3.1.1]") != NULL);
    free(text);

    /* Every key is known to the loader (an empty value: not set, but not unknown either). */
    for (size_t i = 0; i < N_ALL_KEYS; i++) {
        char kv[64];
        const char *env[] = {BASE, kv, NULL};
        struct loaded l;

        snprintf(kv, sizeof(kv), "%s=", all_keys[i]);
        load(NULL, env, &l);
        CHECKF(l.err == SB_OK || strstr(l.why, "unknown") == NULL, "%s: %s", all_keys[i], l.why);
        sb_config_free(l.cfg);
    }
}

static void test_misc(void)
{
    char why[64];
    char *env[] = {NULL};

    sb_config_free(NULL);
    CHECK(sb_config_load(NULL, env, NULL, why, sizeof(why)) != SB_OK);
    /* No `why` buffer: still refused, nothing written anywhere. */
    {
        struct sb_config *cfg = NULL;
        CHECK(sb_config_load(NULL, env, &cfg, NULL, 0) == SB_E_CONFIG);
        CHECK(cfg == NULL);
    }
    /* A tiny `why` is cut, not overrun. */
    {
        struct sb_config *cfg = NULL;
        char tiny[8];
        CHECK(sb_config_load(NULL, NULL, &cfg, tiny, sizeof(tiny)) == SB_E_CONFIG);
        CHECK(strlen(tiny) == sizeof(tiny) - 1);
    }
}

/* SIGHUP: reloadable keys move into the running config, the others are only named (values
 * never), and the old values end up in `fresh`, which the caller frees. */
static void test_reload(void)
{
    const char *old_env[] = {BASE,
                             "BRIDGE_CONTACTS=mom=+46701234567",
                             "BRIDGE_ALLOW_TO=+4670*",
                             "BRIDGE_RATE_LIMIT=5",
                             "BRIDGE_LOG_LEVEL=info",
                             "MQTT_PASSWORD=old-pass",
                             NULL};
    const char *new_env[] = {BASE,
                             "BRIDGE_CONTACTS=mom=+46701234567,ops=+15551234567",
                             "BRIDGE_RATE_LIMIT=50",
                             "BRIDGE_LOG_LEVEL=debug",
                             "MQTT_PASSWORD=new-pass",
                             "BRIDGE_LISTEN=127.0.0.1:9999",
                             NULL};
    struct loaded live, fresh, same;
    struct sb_config_diff diff;

    load(NULL, old_env, &live);
    load(NULL, new_env, &fresh);
    load(NULL, old_env, &same);
    CHECK(live.err == SB_OK && fresh.err == SB_OK && same.err == SB_OK);
    if (live.err != SB_OK || fresh.err != SB_OK || same.err != SB_OK) {
        return;
    }
    sb_config_reload(live.cfg, fresh.cfg, &diff);
    CHECK_STR(diff.changed,
              "BRIDGE_RATE_LIMIT, BRIDGE_ALLOW_TO, BRIDGE_CONTACTS, BRIDGE_LOG_LEVEL");
    CHECK_STR(diff.restart, "MQTT_PASSWORD, BRIDGE_LISTEN");
    CHECK(live.cfg->rate_limit == 50 && live.cfg->log_level == SB_LOG_DEBUG);
    CHECK(live.cfg->n_allow_to == 0 && live.cfg->n_contacts == 2);
    CHECK_STR(sb_config_number_of(live.cfg, "ops"), "+15551234567");
    CHECK_STR(live.cfg->mqtt_password, "old-pass"); /* waits for a restart */
    CHECK(live.cfg->listen_port != 9999);
    CHECK(fresh.cfg->n_allow_to == 1 && fresh.cfg->n_contacts == 1 && fresh.cfg->rate_limit == 5);

    /* Nothing differs: nothing is named. */
    sb_config_reload(fresh.cfg, same.cfg, &diff);
    CHECK_STR(diff.changed, "");
    CHECKF(strcmp(diff.restart, "MQTT_PASSWORD, BRIDGE_LISTEN") == 0, "restart: %s", diff.restart);
    sb_config_free(live.cfg);
    sb_config_free(fresh.cfg);
    sb_config_free(same.cfg);
}

int main(void)
{
    test_defaults();
    test_goods();
    test_bads();
    test_file_goods();
    test_file_bads();
    test_dotenv_edges();
    test_env_over_file();
    test_e164();
    test_lookups();
    test_client_id();
    test_help();
    test_misc();
    test_reload();
    return check_report();
}
