/* The configuration: PRODUCT.md's table, read from the environment and an optional dotenv file
 * (the environment wins). Once loaded, only SIGHUP changes it, on the loop thread, and only the
 * settings marked reloadable (contacts, allow list, limits, log level and format, window check,
 * health interval), which only the loop thread reads; every other setting is immutable, so any
 * thread may read those. Secrets are never printed by anything here. */
#ifndef SB_BRIDGE_CONFIG_H
#define SB_BRIDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bridge/err.h"
#include "bridge/log.h"

enum sb_auth_mode {
    SB_AUTH_OAUTH, /* token fetched, cached, refreshed */
    SB_AUTH_BASIC, /* key id and secret on every call (Sinch: for tests only) */
};

struct sb_contact {
    char *alias;  /* [a-z0-9_-]+, as used in topics */
    char *number; /* E.164 with a leading '+' */
};

struct sb_config {
    /* Sinch */
    char *project_id;       /* SINCH_PROJECT_ID, required */
    char *app_id;           /* SINCH_APP_ID, required */
    char *key_id;           /* SINCH_KEY_ID */
    char *key_secret;       /* SINCH_KEY_SECRET, secret */
    char *region;           /* SINCH_REGION: "us", "eu" or "br" */
    enum sb_auth_mode auth; /* SINCH_AUTH */
    char *api_url; /* SINCH_API_URL, or https://<region>.conversation.api.sinch.com; no trailing '/'
                    */
    char *auth_url;        /* SINCH_AUTH_URL, or https://auth.sinch.com/oauth2/token */
    char *webhook_secret;  /* SINCH_WEBHOOK_SECRET or NULL, secret */
    char *default_channel; /* SINCH_DEFAULT_CHANNEL, upper-case */
    long sinch_timeout; /* BRIDGE_SINCH_TIMEOUT: seconds for one HTTP request (ours; default 30) */
    long sinch_connections; /* BRIDGE_SINCH_CONNECTIONS: most parallel connections (ours; default
                               16) */

    /* MQTT */
    char *mqtt_url;         /* MQTT_URL: mqtt://, mqtts://, ws://, wss:// */
    char *mqtt_username;    /* MQTT_USERNAME or NULL */
    char *mqtt_password;    /* MQTT_PASSWORD or NULL, secret */
    char *mqtt_client_id;   /* MQTT_CLIENT_ID, or sinch-bridge-<prefix>-<hostname> */
    char *mqtt_ca_file;     /* MQTT_CA_FILE or NULL */
    char *mqtt_cert_file;   /* MQTT_CERT_FILE or NULL */
    char *mqtt_key_file;    /* MQTT_KEY_FILE or NULL */
    int mqtt_version;       /* MQTT_VERSION: 5, or 4 for "3.1.1" */
    long mqtt_max_inflight; /* BRIDGE_MQTT_MAX_INFLIGHT: unacknowledged publishes at most, no
                             * more than the broker's Receive Maximum (ours; default 20) */

    /* Bridge */
    char *topic_prefix;    /* BRIDGE_TOPIC_PREFIX, no trailing '/', no wildcard */
    char *share_group;     /* BRIDGE_SHARE_GROUP or NULL */
    char *listen_host;     /* host part of BRIDGE_LISTEN */
    int listen_port;       /* port part of BRIDGE_LISTEN */
    char *webhook_path;    /* BRIDGE_WEBHOOK_PATH, starts with '/' */
    long webhook_max_skew; /* BRIDGE_WEBHOOK_MAX_SKEW, seconds */
    bool webhook_insecure; /* BRIDGE_WEBHOOK_INSECURE */
    char *public_url;      /* BRIDGE_PUBLIC_URL or NULL */
    bool register_webhook; /* BRIDGE_REGISTER_WEBHOOK */
    char *data_dir;        /* BRIDGE_DATA_DIR */
    double rate_limit;     /* BRIDGE_RATE_LIMIT, sends per second; 0 means unlimited */
    long max_age;          /* BRIDGE_MAX_AGE, seconds */
    long retry_max_delay;  /* BRIDGE_RETRY_MAX_DELAY: cap of one backoff, seconds (ours; default 60)
                            */
    char **allow_to;       /* BRIDGE_ALLOW_TO entries: "+4670*" (prefix) or "+46701234567" */
    size_t n_allow_to;     /* 0: every recipient allowed */
    struct sb_contact *contacts; /* BRIDGE_CONTACTS */
    size_t n_contacts;
    long recipient_limit;          /* BRIDGE_RECIPIENT_LIMIT per hour; 0 means none */
    bool window_check;             /* BRIDGE_WINDOW_CHECK */
    long health_interval;          /* BRIDGE_HEALTH_INTERVAL, seconds; 0 off */
    bool ha_discovery;             /* BRIDGE_HA_DISCOVERY */
    char *ha_prefix;               /* BRIDGE_HA_PREFIX */
    enum sb_log_level log_level;   /* BRIDGE_LOG_LEVEL */
    enum sb_log_format log_format; /* BRIDGE_LOG_FORMAT */
};

/* Loads the configuration from `file` (a dotenv file, or NULL) and `env` (a NULL-terminated
 * array of "KEY=value" strings, like environ); a key in `env` wins over the file.
 * Unknown keys starting with SINCH_, MQTT_ or BRIDGE_ are an error (a typo must not pass).
 * On success returns SB_OK and a new config in *out (free with sb_config_free()).
 * On failure returns SB_E_CONFIG and writes into `why` a message that names the key (and
 * file:line for the file), never a secret's value. */
enum sb_err sb_config_load(const char *file, char *const *env, struct sb_config **out, char *why,
                           size_t why_len) SB_MUST_CHECK;

/* Accepts NULL. Overwrites secrets before freeing them. */
void sb_config_free(struct sb_config *cfg);

/* What a reload did: comma-separated key names (never values). */
struct sb_config_diff {
    char changed[512]; /* reloadable keys now running with their new value */
    char restart[512]; /* other keys whose new value waits for a restart */
};

/* SIGHUP: moves the reloadable settings whose value differs from `fresh` into `live` (swapped,
 * so sb_config_free(fresh) frees the old ones) and lists in `diff` what changed and what needs
 * a restart (those keep their running value). `fresh` must be a loaded, valid configuration:
 * a reload that fails to load changes nothing. Thread: loop. */
void sb_config_reload(struct sb_config *live, struct sb_config *fresh, struct sb_config_diff *diff);

/* Writes the configuration table (name, default, meaning) for --help. */
void sb_config_print_help(FILE *f);

/* Normalises a phone number to E.164 with '+': '+' optional, then 8 to 15 digits, the first not
 * 0. Writes into out (at least 17 bytes). Returns false when it is not E.164. */
bool sb_e164_normalise(const char *in, char *out, size_t out_len);

/* The alias of an E.164 number ("+46701234567"), or NULL. Borrowed from cfg. */
const char *sb_config_alias_of(const struct sb_config *cfg, const char *e164);
/* The E.164 number of an alias, or NULL. Borrowed from cfg. */
const char *sb_config_number_of(const struct sb_config *cfg, const char *alias);
/* Whether BRIDGE_ALLOW_TO lets `e164` be a recipient (always true when the list is empty). */
bool sb_config_allowed(const struct sb_config *cfg, const char *e164);

#endif
