/* What the libFuzzer targets of tests/fuzz share: the oracle macro, a quiet and deterministic
 * start, and the configuration they parse against. The configuration is a real one, loaded by
 * sb_config_load() from a fixed environment, so the contacts and the allow list have passed the
 * daemon's own checks. Included by the fuzz_*.c files only. */
#ifndef SB_TESTS_FUZZ_H
#define SB_TESTS_FUZZ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/command.h"
#include "bridge/config.h"
#include "bridge/log.h"

/* libFuzzer's entry points, declared for -Wmissing-prototypes. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An oracle: when `cond` is false, say which and why, then abort(), which libFuzzer reports as a
 * crash and saves the input for. `...` is a printf format and its arguments (at least one). */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: oracle failed: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The contacts and allow list of every fuzzed configuration. "+4670*" allows mom and the night
 * shift, "+1555*" allows ops; far (+49) is a contact outside the allow list. */
#define FUZZ_CONTACTS                                                                              \
    "mom=+46701234567,ops=+15551234567,far=+4915112345678,night-shift=+46705551234"
#define FUZZ_ALLOW_TO "+4670*,+1555*"
#define FUZZ_APP_ID   "01FUZZAPP"
#define FUZZ_PREFIX   "sinch"

/* Errors only: a log line per refused input would make stderr the bottleneck of the run. And a
 * fixed jansson hash seed: jansson seeds from /dev/urandom, which would change the order of
 * object iteration (check_fields, json_object_foreach), hence the coverage, from run to run. */
static inline void fuzz_quiet(void)
{
    sb_log_setup(SB_LOG_ERROR, SB_LOG_TEXT);
    json_object_seed(1);
}

/* A configuration with FUZZ_CONTACTS, `channel` as SINCH_DEFAULT_CHANNEL and, when
 * `allow_list`, FUZZ_ALLOW_TO. Aborts when it does not load (the fixture is broken). Returns a
 * new config (sb_config_free()). */
static inline struct sb_config *fuzz_config(const char *channel, bool allow_list)
{
    char project[] = "SINCH_PROJECT_ID=fuzz-project";
    char app[] = "SINCH_APP_ID=" FUZZ_APP_ID;
    char key[] = "SINCH_KEY_ID=fuzz-key";
    char secret[] = "SINCH_KEY_SECRET=fuzz-key-secret";
    char hook[] = "SINCH_WEBHOOK_SECRET=fuzz-webhook-secret";
    char prefix[] = "BRIDGE_TOPIC_PREFIX=" FUZZ_PREFIX;
    char contacts[] = "BRIDGE_CONTACTS=" FUZZ_CONTACTS;
    char ha[] = "BRIDGE_HA_DISCOVERY=1";
    char allow[] = "BRIDGE_ALLOW_TO=" FUZZ_ALLOW_TO;
    char def[64];
    char *env[] = {project, app, key, secret, hook, prefix, contacts, ha, def, NULL, NULL};
    struct sb_config *loaded = NULL; /* not `cfg`: the fuzz targets have a static cfg */
    char why[256];

    snprintf(def, sizeof(def), "SINCH_DEFAULT_CHANNEL=%s", channel);
    if (allow_list) {
        env[9] = allow;
    }
    if (sb_config_load(NULL, env, &loaded, why, sizeof(why)) != SB_OK) {
        fprintf(stderr, "fuzz: the fixture's configuration does not load: %s\n", why);
        abort();
    }
    return loaded;
}

/* Whether s (len bytes) could be one level of an MQTT topic name: UTF-8 without NUL (MQTT 5
 * 1.5.4), no '/' (a level separator) and no wildcard ('+', '#' are for filters only, 4.7.1). */
static inline bool fuzz_topic_level(const char *s, size_t len)
{
    return sb_utf8_valid(s, len) && !memchr(s, '\0', len) && !memchr(s, '/', len) &&
           !memchr(s, '+', len) && !memchr(s, '#', len);
}

#endif
