/* libFuzzer target: the configuration, sb_config_load(), with the environment taken from the
 * input (one "KEY=value" a line) ahead of a valid base, so that the first of two wins as in
 * config.c and each line can replace one setting of a configuration that otherwise loads.
 * Oracles, beyond "no crash, no leak, no undefined behaviour":
 *   - a refusal has a message, and the message holds none of the three secrets of the base
 *     (canaries; checked when the input does not contain them itself, since a setting that is
 *     not secret may quote them legitimately);
 *   - an accepted configuration keeps the promises config.h makes: a topic prefix MQTT can
 *     subscribe to (UTF-8, no wildcard, no empty first or last level, not '$'), an HA prefix,
 *     share group and client id in UTF-8 (MQTT's strings must be), contacts with
 *     valid aliases, E.164 numbers and no alias or number twice, an allow list of E.164 numbers
 *     or prefixes, an upper-case default channel, a webhook path starting with '/';
 *   - loading the same input twice and reloading one into the other changes nothing. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/command.h"
#include "bridge/config.h"
#include "fuzz.h"

#define MAX_LINES   32
#define KEY_CANARY  "keysecret-Q9v-canary"
#define HOOK_CANARY "hooksecret-W3k-canary"
#define PASS_CANARY "mqttpass-Z8j-canary"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

static bool all_digits(const char *s)
{
    return s[0] && s[strspn(s, "0123456789")] == '\0';
}

static bool e164(const char *s)
{
    char buf[24];
    return sb_e164_normalise(s, buf, sizeof(buf)) && strcmp(buf, s) == 0;
}

static void check_loaded(const struct sb_config *cfg)
{
    const char *p = cfg->topic_prefix;
    size_t n = p ? strlen(p) : 0;

    FUZZ_CHECK(n > 0 && sb_utf8_valid(p, n) && !strpbrk(p, "+#") && p[0] != '/' &&
                   p[n - 1] != '/' && p[0] != '$',
               "topic prefix \"%s\"", p ? p : "(null)");
    FUZZ_CHECK(
        sb_utf8_valid(cfg->ha_prefix, strlen(cfg->ha_prefix)) &&
            (!cfg->share_group || sb_utf8_valid(cfg->share_group, strlen(cfg->share_group))) &&
            sb_utf8_valid(cfg->mqtt_client_id, strlen(cfg->mqtt_client_id)),
        "an MQTT string that is not UTF-8");
    for (size_t i = 0; i < cfg->n_contacts; i++) {
        const struct sb_contact *c = &cfg->contacts[i];
        size_t an = strlen(c->alias);
        FUZZ_CHECK(an >= 1 && an <= 32 &&
                       c->alias[strspn(c->alias, "abcdefghijklmnopqrstuvwxyz0123456789_-")] ==
                           '\0' &&
                       !all_digits(c->alias),
                   "alias \"%s\"", c->alias);
        FUZZ_CHECK(e164(c->number), "number \"%s\" of %s", c->number, c->alias);
        for (size_t j = 0; j < i; j++) {
            FUZZ_CHECK(strcmp(cfg->contacts[j].alias, c->alias) != 0 &&
                           strcmp(cfg->contacts[j].number, c->number) != 0,
                       "contact %s=%s twice", c->alias, c->number);
        }
    }
    for (size_t i = 0; i < cfg->n_allow_to; i++) {
        const char *a = cfg->allow_to[i];
        size_t an = strlen(a);
        FUZZ_CHECK(e164(a) || (an >= 3 && a[0] == '+' && a[1] != '0' && a[an - 1] == '*' &&
                               strspn(a + 1, "0123456789") == an - 2),
                   "allow entry \"%s\"", a);
    }
    FUZZ_CHECK(
        cfg->default_channel && cfg->default_channel[0] &&
            cfg->default_channel[strspn(cfg->default_channel, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_")] ==
                '\0',
        "default channel \"%s\"", cfg->default_channel ? cfg->default_channel : "(null)");
    FUZZ_CHECK(cfg->webhook_path && cfg->webhook_path[0] == '/', "webhook path \"%s\"",
               cfg->webhook_path ? cfg->webhook_path : "(null)");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char project[] = "SINCH_PROJECT_ID=fuzz-project";
    char app[] = "SINCH_APP_ID=" FUZZ_APP_ID;
    char key[] = "SINCH_KEY_ID=fuzz-key";
    char secret[] = "SINCH_KEY_SECRET=" KEY_CANARY;
    char hook[] = "SINCH_WEBHOOK_SECRET=" HOOK_CANARY;
    char user[] = "MQTT_USERNAME=fuzz-user";
    char pass[] = "MQTT_PASSWORD=" PASS_CANARY;
    char *env[MAX_LINES + 8];
    char *text = malloc(size + 1);
    struct sb_config *a = NULL;
    struct sb_config *b = NULL;
    struct sb_config_diff diff;
    char why[512] = "";
    size_t n = 0;
    enum sb_err rc;

    FUZZ_CHECK(text != NULL, "malloc");
    if (size > 0) {
        memcpy(text, data, size);
    }
    text[size] = '\0';
    /* One entry a line; a NUL ends the entry where it is, as it would in environ. */
    for (char *line = text; line && n < MAX_LINES;) {
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
        }
        env[n++] = line;
        line = nl ? nl + 1 : NULL;
    }
    env[n++] = project;
    env[n++] = app;
    env[n++] = key;
    env[n++] = secret;
    env[n++] = hook;
    env[n++] = user;
    env[n++] = pass;
    env[n] = NULL;

    rc = sb_config_load(NULL, env, &a, why, sizeof(why));
    FUZZ_CHECK(rc == SB_OK || rc == SB_E_CONFIG, "rc %d", (int)rc);
    if (rc != SB_OK) {
        static const char *const canaries[] = {KEY_CANARY, HOOK_CANARY, PASS_CANARY};
        FUZZ_CHECK(why[0] != '\0' && a == NULL, "refused without a message");
        for (size_t i = 0; i < 3; i++) {
            size_t cn = strlen(canaries[i]);
            bool in_input = false;
            for (size_t j = 0; !in_input && j + cn <= size; j++) {
                in_input = memcmp(data + j, canaries[i], cn) == 0;
            }
            FUZZ_CHECK(in_input || !strstr(why, canaries[i]), "a secret in \"%s\"", why);
        }
        free(text);
        return 0;
    }
    check_loaded(a);
    rc = sb_config_load(NULL, env, &b, why, sizeof(why));
    FUZZ_CHECK(rc == SB_OK, "the second load failed: %s", why);
    sb_config_reload(a, b, &diff);
    FUZZ_CHECK(diff.changed[0] == '\0' && diff.restart[0] == '\0',
               "a reload of the same settings changed \"%s\", restart \"%s\"", diff.changed,
               diff.restart);
    check_loaded(a);
    sb_config_free(a);
    sb_config_free(b);
    free(text);
    return 0;
}
