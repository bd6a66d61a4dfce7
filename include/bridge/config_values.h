/* Internal to the config module: the value parsers that config.c's key table points at, and the
 * message helpers both files use. Nothing outside bridge/config.c and bridge/config_values.c
 * includes this; the rest of the program sees only include/bridge/config.h. Every function here
 * touches only its arguments, so any thread may call it (config.c does, while loading). */
#ifndef SB_BRIDGE_CONFIG_VALUES_H
#define SB_BRIDGE_CONFIG_VALUES_H

#include <stdbool.h>
#include <stddef.h>

#include "bridge/config.h"
#include "bridge/err.h"

#define SB_CONFIG_SHOW_MAX 40 /* characters of a bad value quoted back in a message */

/* snprintf into `buf` of `len` bytes; does nothing when `buf` is NULL or `len` is 0. */
void sb_config_say(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An excerpt of the first `n` characters of a (non-secret) value, fit to quote in a message: at
 * most SB_CONFIG_SHOW_MAX characters, control bytes as '?'. Writes into `buf` (SB_CONFIG_SHOW_MAX
 * + 8 bytes are enough) and returns it. */
const char *sb_config_show_n(const char *s, size_t n, char *buf, size_t len);
/* sb_config_show_n() of the whole string. */
const char *sb_config_show(const char *s, char *buf, size_t len);

/* String checks (config.c's check_fn): each checks `v`, the config's own copy, and may
 * canonicalise it in place (it only gets shorter). Returns true when it is valid, else writes
 * what is wrong into `problem` of `len` bytes. */
bool sb_config_check_id(char *v, char *problem, size_t len);         /* SINCH_PROJECT_ID, _APP_ID */
bool sb_config_check_key_id(char *v, char *problem, size_t len);     /* SINCH_KEY_ID */
bool sb_config_check_region(char *v, char *problem, size_t len);     /* SINCH_REGION, lower-cased */
bool sb_config_check_channel(char *v, char *problem, size_t len);    /* SINCH_DEFAULT_CHANNEL */
bool sb_config_check_api_url(char *v, char *problem, size_t len);    /* SINCH_API_URL */
bool sb_config_check_http_url(char *v, char *problem, size_t len);   /* SINCH_AUTH_URL */
bool sb_config_check_public_url(char *v, char *problem, size_t len); /* BRIDGE_PUBLIC_URL */
bool sb_config_check_mqtt_url(char *v, char *problem, size_t len);   /* MQTT_URL */
bool sb_config_check_client_id(char *v, char *problem, size_t len);  /* MQTT_CLIENT_ID */
bool sb_config_check_topic_part(char *v, char *problem, size_t len); /* topic and HA prefixes */
bool sb_config_check_share_group(char *v, char *problem, size_t len); /* BRIDGE_SHARE_GROUP */
bool sb_config_check_path(char *v, char *problem, size_t len);        /* BRIDGE_WEBHOOK_PATH */

/* Special parsers (config.c's parse_fn): each parses `v` (borrowed) into fields of `cfg`.
 * Returns SB_OK, SB_E_CONFIG with `problem` written, or SB_E_NOMEM. What it allocated before
 * failing is freed by sb_config_free(). */
enum sb_err sb_config_parse_listen(struct sb_config *cfg, const char *v, char *problem,
                                   size_t len); /* BRIDGE_LISTEN: listen_host, listen_port */
enum sb_err sb_config_parse_allow_to(struct sb_config *cfg, const char *v, char *problem,
                                     size_t len); /* BRIDGE_ALLOW_TO: allow_to, n_allow_to */
enum sb_err sb_config_parse_contacts(struct sb_config *cfg, const char *v, char *problem,
                                     size_t len); /* BRIDGE_CONTACTS: contacts, n_contacts */

/* 0/1, true/false, yes/no, on/off in any case. Returns false when `v` is none of them. */
bool sb_config_parse_bool(const char *v, bool *out);

enum sb_config_number {
    SB_CONFIG_NUMBER_OK,
    SB_CONFIG_NUMBER_BAD,   /* not a number at all */
    SB_CONFIG_NUMBER_RANGE, /* a number, but too large for a long */
};

/* A decimal whole number into *out. */
enum sb_config_number sb_config_parse_long(const char *v, long *out);
/* A finite decimal number into *out. Returns false when `v` is not one. */
bool sb_config_parse_double(const char *v, double *out);

#endif
