/* The value parsers of the configuration: each checks (and canonicalises) one kind of value --
 * ids, URLs, the listen address, topic levels, the allow list, contacts, E.164 numbers, numbers
 * and booleans -- and says what is wrong in words that never quote a secret. config.c calls them
 * from its key table while loading, on the loop thread; the lookups at the end (aliases, the allow
 * list) read what these parsers wrote, from any thread. */
#include "bridge/config_values.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge/command.h" /* sb_utf8_valid() */

#define CLIENT_ID_LIMIT 256 /* of a given MQTT_CLIENT_ID */
#define TOPIC_PART_MAX  128 /* BRIDGE_TOPIC_PREFIX, BRIDGE_HA_PREFIX */
#define ALIAS_MAX       32
#define HOST_MAX        253
#define URL_MAX         2048

void sb_config_say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (!buf || len == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* An excerpt of a (non-secret) value fit to quote in a message: at most SB_CONFIG_SHOW_MAX
 * characters, control bytes as '?'. Returns `buf`. */
const char *sb_config_show_n(const char *s, size_t n, char *buf, size_t len)
{
    size_t w = 0;

    for (size_t i = 0; i < n && s[i] && w + 4 < len; i++) {
        if (i == SB_CONFIG_SHOW_MAX) {
            memcpy(buf + w, "...", 3);
            w += 3;
            break;
        }
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            buf[w++] = '?';
        } else {
            buf[w++] = s[i];
        }
    }
    buf[w] = '\0';
    return buf;
}

const char *sb_config_show(const char *s, char *buf, size_t len)
{
    return sb_config_show_n(s, strlen(s), buf, len);
}

static bool has_ctl(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return true;
        }
    }
    return false;
}

static bool has_space_or_ctl(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s <= 0x20 || *s == 0x7f) {
            return true;
        }
    }
    return false;
}

static bool all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++) {
        if (!s[i] || !strchr(set, s[i])) {
            return false;
        }
    }
    return true;
}

#define DIGITS     "0123456789"
#define HOST_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_"
#define V6_CHARS   "0123456789ABCDEFabcdef:."

static void lower(char *s)
{
    for (; *s; s++) {
        *s = (char)tolower((unsigned char)*s);
    }
}

static void upper(char *s)
{
    for (; *s; s++) {
        *s = (char)toupper((unsigned char)*s);
    }
}

/* A port: 1 to 5 digits, min..65535. */
static bool port_ok(const char *s, size_t n, long min, long *out)
{
    long port = 0;

    if (n == 0 || n > 5 || !all_of(s, n, DIGITS)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        port = port * 10 + (s[i] - '0');
    }
    *out = port;
    return port >= min && port <= 65535;
}

/* ---- string checks ---- */

/* Project and app ids are pasted into request paths, so only URL-safe characters pass. */
bool sb_config_check_id(char *v, char *problem, size_t len)
{
    size_t n = strlen(v);

    if (n > 128 || !all_of(v, n, HOST_CHARS)) {
        char shown[SB_CONFIG_SHOW_MAX + 8];
        sb_config_say(problem, len,
                      "\"%s\" may hold only letters, digits, '.', '_' and '-' (at most 128)",
                      sb_config_show(v, shown, sizeof(shown)));
        return false;
    }
    return true;
}

/* The key id is the user name of HTTP basic auth, which cannot hold ':'. */
bool sb_config_check_key_id(char *v, char *problem, size_t len)
{
    if (strchr(v, ':') || has_ctl(v) || strlen(v) > 256) {
        sb_config_say(problem, len,
                      "must not contain ':' or control characters (at most 256 characters)");
        return false;
    }
    return true;
}

bool sb_config_check_region(char *v, char *problem, size_t len)
{
    lower(v);
    if (strcmp(v, "us") != 0 && strcmp(v, "eu") != 0 && strcmp(v, "br") != 0) {
        char shown[SB_CONFIG_SHOW_MAX + 8];
        sb_config_say(problem, len, "\"%s\" is not one of us, eu, br",
                      sb_config_show(v, shown, sizeof(shown)));
        return false;
    }
    return true;
}

bool sb_config_check_channel(char *v, char *problem, size_t len)
{
    size_t n = strlen(v);

    upper(v);
    if (n > 32 || !all_of(v, n, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_")) {
        char shown[SB_CONFIG_SHOW_MAX + 8];
        sb_config_say(problem, len,
                      "\"%s\" is not a channel name (letters and '_', like WHATSAPP or SMS)",
                      sb_config_show(v, shown, sizeof(shown)));
        return false;
    }
    return true;
}

struct url {
    size_t scheme; /* index into the allowed schemes */
    char *rest;    /* from the first '/', '?' or '#' after host[:port]; "" when none */
};

/* Splits scheme://host[:port]rest, lower-casing the scheme in place. `schemes` ends with NULL.
 * Credentials in the URL are refused, and the URL is never quoted back: it might hold some. */
static bool url_split(char *v, const char *const *schemes, struct url *u, char *problem, size_t len)
{
    char *sep = strstr(v, "://");
    char *auth;
    char *end;
    char *host_end;
    long port;

    if (has_space_or_ctl(v)) {
        sb_config_say(problem, len, "must not contain spaces or control characters");
        return false;
    }
    if (strlen(v) > URL_MAX) {
        sb_config_say(problem, len, "is longer than %d characters", URL_MAX);
        return false;
    }
    if (!sep) {
        sb_config_say(problem, len, "is not a URL (scheme://host[:port])");
        return false;
    }
    for (char *p = v; p < sep; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    for (u->scheme = 0; schemes[u->scheme]; u->scheme++) {
        const char *s = schemes[u->scheme];
        if (strlen(s) == (size_t)(sep - v) && strncmp(v, s, (size_t)(sep - v)) == 0) {
            break;
        }
    }
    if (!schemes[u->scheme]) {
        char list[64] = "";
        for (size_t i = 0; schemes[i]; i++) {
            size_t used = strlen(list);
            const char *sep_i = i == 0 ? "" : schemes[i + 1] ? ", " : " or ";
            snprintf(list + used, sizeof(list) - used, "%s%s://", sep_i, schemes[i]);
        }
        sb_config_say(problem, len, "must start with %s", list);
        return false;
    }
    auth = sep + 3;
    end = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(end - auth))) {
        sb_config_say(problem, len, "must not carry credentials (user:password@)");
        return false;
    }
    if (*auth == '[') {
        host_end = memchr(auth, ']', (size_t)(end - auth));
        if (!host_end || host_end == auth + 1 ||
            !all_of(auth + 1, (size_t)(host_end - auth - 1), V6_CHARS)) {
            sb_config_say(problem, len, "has an invalid IPv6 host (the form is [::1])");
            return false;
        }
        host_end++;
    } else {
        host_end = auth + strcspn(auth, ":/?#");
        if (host_end == auth) {
            sb_config_say(problem, len, "has no host");
            return false;
        }
        if ((size_t)(host_end - auth) > HOST_MAX ||
            !all_of(auth, (size_t)(host_end - auth), HOST_CHARS)) {
            sb_config_say(problem, len, "has an invalid host");
            return false;
        }
    }
    if (host_end < end &&
        (*host_end != ':' || !port_ok(host_end + 1, (size_t)(end - host_end - 1), 1, &port))) {
        sb_config_say(problem, len, "has an invalid port (1 to 65535)");
        return false;
    }
    u->rest = end;
    return true;
}

static const char *const http_schemes[] = {"http", "https", NULL};
static const char *const mqtt_schemes[] = {"mqtt", "mqtts", "ws", "wss", NULL};

/* Strips trailing '/' from `rest`; returns false when something else is left (a path). */
static bool strip_slashes(char *rest)
{
    if (!all_of(rest, strlen(rest), "/")) {
        return false;
    }
    *rest = '\0';
    return true;
}

/* SINCH_API_URL is a base: PRODUCT.md "URLs" (paths are appended). */
bool sb_config_check_api_url(char *v, char *problem, size_t len)
{
    struct url u;

    if (!url_split(v, http_schemes, &u, problem, len)) {
        return false;
    }
    if (!strip_slashes(u.rest)) {
        sb_config_say(problem, len,
                      "must be scheme://host[:port] with no path (paths are appended)");
        return false;
    }
    return true;
}

/* SINCH_AUTH_URL is the whole token URL. */
bool sb_config_check_http_url(char *v, char *problem, size_t len)
{
    struct url u;

    return url_split(v, http_schemes, &u, problem, len);
}

/* BRIDGE_PUBLIC_URL is a base that BRIDGE_WEBHOOK_PATH is appended to; it may have a path of
 * its own (a reverse proxy's prefix), but no query or fragment. */
bool sb_config_check_public_url(char *v, char *problem, size_t len)
{
    struct url u;
    size_t n;

    if (!url_split(v, http_schemes, &u, problem, len)) {
        return false;
    }
    if (strpbrk(u.rest, "?#")) {
        sb_config_say(problem, len,
                      "must not have a query or fragment (BRIDGE_WEBHOOK_PATH is appended)");
        return false;
    }
    n = strlen(v);
    while (n > 0 && v[n - 1] == '/') {
        v[--n] = '\0';
    }
    return true;
}

/* paho takes a path only on websockets (brokers such as EMQX serve MQTT at ws://host/mqtt). */
bool sb_config_check_mqtt_url(char *v, char *problem, size_t len)
{
    struct url u;

    if (!url_split(v, mqtt_schemes, &u, problem, len)) {
        return false;
    }
    if (strncmp(mqtt_schemes[u.scheme], "ws", 2) != 0 && !strip_slashes(u.rest)) {
        sb_config_say(problem, len,
                      "must be mqtt[s]://host[:port]: only ws:// and wss:// take a path");
        return false;
    }
    return true;
}

/* MQTT's strings (client id, topic names and filters) are UTF-8, and a broker closes the
 * connection of a client that sends anything else (MQTT 5 1.5.4): refused here, at start,
 * rather than by the broker on every reconnect (found by tests/fuzz/fuzz_config.c). */
static bool utf8(const char *v)
{
    return sb_utf8_valid(v, strlen(v));
}

bool sb_config_check_client_id(char *v, char *problem, size_t len)
{
    if (strlen(v) > CLIENT_ID_LIMIT || has_ctl(v) || !utf8(v)) {
        sb_config_say(problem, len,
                      "must be at most %d characters of UTF-8, without control characters",
                      CLIENT_ID_LIMIT);
        return false;
    }
    return true;
}

/* The first levels of topics: BRIDGE_TOPIC_PREFIX and BRIDGE_HA_PREFIX. */
bool sb_config_check_topic_part(char *v, char *problem, size_t len)
{
    char shown[SB_CONFIG_SHOW_MAX + 8];
    size_t n = strlen(v);

    if (n > TOPIC_PART_MAX) {
        sb_config_say(problem, len, "is longer than %d characters", TOPIC_PART_MAX);
    } else if (strpbrk(v, "+#")) {
        sb_config_say(problem, len, "\"%s\" must not contain the MQTT wildcards '+' or '#'",
                      sb_config_show(v, shown, sizeof(shown)));
    } else if (has_ctl(v)) {
        sb_config_say(problem, len, "must not contain control characters");
    } else if (!utf8(v)) {
        sb_config_say(problem, len, "is not UTF-8 text");
    } else if (v[0] == '/' || v[n - 1] == '/') {
        sb_config_say(problem, len, "\"%s\" must not start or end with '/'",
                      sb_config_show(v, shown, sizeof(shown)));
    } else if (v[0] == '$') {
        /* Brokers keep $-topics for themselves ($SYS, $share), and '#' does not match them. */
        sb_config_say(problem, len, "\"%s\" must not start with '$'",
                      sb_config_show(v, shown, sizeof(shown)));
    } else {
        return true;
    }
    return false;
}

bool sb_config_check_share_group(char *v, char *problem, size_t len)
{
    if (strpbrk(v, "/+#") || has_ctl(v) || strlen(v) > 64 || !utf8(v)) {
        char shown[SB_CONFIG_SHOW_MAX + 8];
        sb_config_say(problem, len,
                      "\"%s\" must be UTF-8 without '/', '+', '#' or control characters (at most "
                      "64)",
                      sb_config_show(v, shown, sizeof(shown)));
        return false;
    }
    return true;
}

bool sb_config_check_path(char *v, char *problem, size_t len)
{
    if (v[0] != '/' || has_space_or_ctl(v) || strpbrk(v, "?#") || strlen(v) > 256) {
        char shown[SB_CONFIG_SHOW_MAX + 8];
        sb_config_say(problem, len,
                      "\"%s\" must be a path starting with '/', without spaces, '?' or '#'",
                      sb_config_show(v, shown, sizeof(shown)));
        return false;
    }
    return true;
}

/* ---- special parsers ---- */

/* host:port, [IPv6]:port; port 0 asks for any free port. */
enum sb_err sb_config_parse_listen(struct sb_config *cfg, const char *v, char *problem, size_t len)
{
    const char *host = v;
    size_t host_len;
    const char *colon;
    long port;

    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':' || close == v + 1 ||
            !all_of(v + 1, (size_t)(close - v - 1), V6_CHARS)) {
            sb_config_say(problem, len, "must be host:port or [IPv6]:port");
            return SB_E_CONFIG;
        }
        host = v + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon || colon == v) {
            sb_config_say(problem, len, "must be host:port or [IPv6]:port");
            return SB_E_CONFIG;
        }
        if (memchr(v, ':', (size_t)(colon - v))) {
            sb_config_say(problem, len, "an IPv6 address goes in brackets: [::1]:8080");
            return SB_E_CONFIG;
        }
        host_len = (size_t)(colon - v);
        if (host_len > HOST_MAX || !all_of(v, host_len, HOST_CHARS)) {
            sb_config_say(problem, len, "has an invalid host");
            return SB_E_CONFIG;
        }
    }
    if (!port_ok(colon + 1, strlen(colon + 1), 0, &port)) {
        sb_config_say(problem, len, "has an invalid port (0 to 65535; 0 picks a free one)");
        return SB_E_CONFIG;
    }
    free(cfg->listen_host);
    cfg->listen_host = strndup(host, host_len);
    if (!cfg->listen_host) {
        return SB_E_NOMEM;
    }
    cfg->listen_port = (int)port;
    return SB_OK;
}

/* Takes the next comma-separated item of *p, trimmed of blanks. Returns false at the end. */
static bool next_item(const char **p, const char **item, size_t *item_len)
{
    const char *s = *p;
    const char *end;

    if (!s) {
        return false;
    }
    end = strchr(s, ',');
    *p = end ? end + 1 : NULL;
    if (!end) {
        end = s + strlen(s);
    }
    while (s < end && isblank((unsigned char)*s)) {
        s++;
    }
    while (end > s && isblank((unsigned char)end[-1])) {
        end--;
    }
    *item = s;
    *item_len = (size_t)(end - s);
    return true;
}

static size_t count_items(const char *s)
{
    size_t n = 1;

    for (; *s; s++) {
        n += *s == ',';
    }
    return n;
}

/* E.164 of a substring; false when it is not one. */
static bool e164_n(const char *s, size_t n, char *out, size_t out_len)
{
    char buf[24];

    if (n >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    return sb_e164_normalise(buf, out, out_len);
}

/* "+4670*" (the '+' optional): the start of E.164 numbers. */
static bool allow_prefix(const char *s, size_t n, char *out, size_t out_len)
{
    if (n < 2 || s[n - 1] != '*') {
        return false;
    }
    n--;
    if (*s == '+') {
        s++;
        n--;
    }
    if (n == 0 || n > 15 || s[0] == '0' || !all_of(s, n, DIGITS) || n + 3 > out_len) {
        return false;
    }
    out[0] = '+';
    memcpy(out + 1, s, n);
    out[n + 1] = '*';
    out[n + 2] = '\0';
    return true;
}

enum sb_err sb_config_parse_allow_to(struct sb_config *cfg, const char *v, char *problem,
                                     size_t len)
{
    const char *p = v;
    const char *item;
    size_t n;

    cfg->n_allow_to = 0;
    cfg->allow_to = calloc(count_items(v), sizeof(*cfg->allow_to));
    if (!cfg->allow_to) {
        return SB_E_NOMEM;
    }
    while (next_item(&p, &item, &n)) {
        char entry[24];

        if (n == 0) {
            continue;
        }
        if (!allow_prefix(item, n, entry, sizeof(entry)) &&
            !e164_n(item, n, entry, sizeof(entry))) {
            char shown[SB_CONFIG_SHOW_MAX + 8];
            sb_config_say(problem, len,
                          "\"%s\" is neither an E.164 number nor a prefix like +4670*",
                          sb_config_show_n(item, n, shown, sizeof(shown)));
            return SB_E_CONFIG;
        }
        cfg->allow_to[cfg->n_allow_to] = strdup(entry);
        if (!cfg->allow_to[cfg->n_allow_to]) {
            return SB_E_NOMEM;
        }
        cfg->n_allow_to++;
    }
    if (cfg->n_allow_to == 0) {
        /* An empty list would allow everyone: the opposite of what the user wrote. */
        sb_config_say(problem, len, "lists no number");
        return SB_E_CONFIG;
    }
    return SB_OK;
}

/* Aliases name topic levels: a-z, 0-9, '_', '-'; never all digits, which would read as a number
 * in P/send/<recipient>. */
static bool alias_ok(const char *s, size_t n)
{
    return n >= 1 && n <= ALIAS_MAX && all_of(s, n, "abcdefghijklmnopqrstuvwxyz0123456789_-");
}

enum sb_err sb_config_parse_contacts(struct sb_config *cfg, const char *v, char *problem,
                                     size_t len)
{
    const char *p = v;
    const char *item;
    size_t n;

    cfg->n_contacts = 0;
    cfg->contacts = calloc(count_items(v), sizeof(*cfg->contacts));
    if (!cfg->contacts) {
        return SB_E_NOMEM;
    }
    while (next_item(&p, &item, &n)) {
        const char *eq = memchr(item, '=', n);
        const char *alias = item;
        size_t alias_len;
        const char *num;
        size_t num_len;
        char number[24];
        char shown[SB_CONFIG_SHOW_MAX + 8];
        struct sb_contact *c;

        if (n == 0) {
            continue;
        }
        if (!eq) {
            sb_config_say(problem, len, "\"%s\" is not alias=number",
                          sb_config_show_n(item, n, shown, sizeof(shown)));
            return SB_E_CONFIG;
        }
        alias_len = (size_t)(eq - item);
        while (alias_len > 0 && isblank((unsigned char)alias[alias_len - 1])) {
            alias_len--;
        }
        num = eq + 1;
        num_len = n - (size_t)(num - item);
        while (num_len > 0 && isblank((unsigned char)*num)) {
            num++;
            num_len--;
        }
        sb_config_show_n(alias, alias_len, shown, sizeof(shown));
        if (!alias_ok(alias, alias_len)) {
            sb_config_say(problem, len, "alias \"%s\" must be 1 to %d of a-z, 0-9, '_' and '-'",
                          shown, ALIAS_MAX);
            return SB_E_CONFIG;
        }
        if (all_of(alias, alias_len, DIGITS)) {
            sb_config_say(problem, len, "alias \"%s\" is all digits, so it would read as a number",
                          shown);
            return SB_E_CONFIG;
        }
        if (!e164_n(num, num_len, number, sizeof(number))) {
            char shown2[SB_CONFIG_SHOW_MAX + 8];
            sb_config_say(problem, len, "number \"%s\" of alias \"%s\" is not E.164",
                          sb_config_show_n(num, num_len, shown2, sizeof(shown2)), shown);
            return SB_E_CONFIG;
        }
        for (size_t i = 0; i < cfg->n_contacts; i++) {
            c = &cfg->contacts[i];
            if (strlen(c->alias) == alias_len && memcmp(c->alias, alias, alias_len) == 0) {
                sb_config_say(problem, len, "alias \"%s\" is given twice", shown);
                return SB_E_CONFIG;
            }
            if (strcmp(c->number, number) == 0) {
                /* Inbound messages are published under the alias: it must be one. */
                sb_config_say(problem, len, "%s has two aliases, \"%s\" and \"%s\"", number,
                              c->alias, shown);
                return SB_E_CONFIG;
            }
        }
        c = &cfg->contacts[cfg->n_contacts];
        c->alias = strndup(alias, alias_len);
        c->number = strdup(number);
        if (!c->alias || !c->number) {
            free(c->alias);
            free(c->number);
            c->alias = c->number = NULL;
            return SB_E_NOMEM;
        }
        cfg->n_contacts++;
    }
    return SB_OK;
}

/* ---- numbers and booleans ---- */

bool sb_config_parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* strtol with an end-pointer check; no sign other than '-', no blanks, no hex. */
enum sb_config_number sb_config_parse_long(const char *v, long *out)
{
    char *end;

    if (!(isdigit((unsigned char)v[0]) || (v[0] == '-' && isdigit((unsigned char)v[1])))) {
        return SB_CONFIG_NUMBER_BAD;
    }
    errno = 0;
    *out = strtol(v, &end, 10);
    if (*end != '\0') {
        return SB_CONFIG_NUMBER_BAD;
    }
    return errno == ERANGE ? SB_CONFIG_NUMBER_RANGE : SB_CONFIG_NUMBER_OK;
}

bool sb_config_parse_double(const char *v, double *out)
{
    char *end;

    if (!(isdigit((unsigned char)v[0]) || v[0] == '.' || v[0] == '-') || strpbrk(v, "xXpP")) {
        return false;
    }
    errno = 0;
    *out = strtod(v, &end);
    return end != v && *end == '\0' && errno == 0 && isfinite(*out);
}

/* ---- E.164 and the lookups of include/bridge/config.h ---- */

bool sb_e164_normalise(const char *in, char *out, size_t out_len)
{
    size_t n;

    if (!in || !out) {
        return false;
    }
    if (*in == '+') {
        in++;
    }
    n = strspn(in, DIGITS);
    if (in[n] != '\0' || n < 8 || n > 15 || in[0] == '0' || out_len < n + 2) {
        return false;
    }
    memmove(out + 1, in, n); /* memmove: `in` and `out` may be the same buffer */
    out[0] = '+';
    out[n + 1] = '\0';
    return true;
}

const char *sb_config_alias_of(const struct sb_config *cfg, const char *e164)
{
    char number[24];

    if (!cfg || !sb_e164_normalise(e164, number, sizeof(number))) {
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_contacts; i++) {
        if (strcmp(cfg->contacts[i].number, number) == 0) {
            return cfg->contacts[i].alias;
        }
    }
    return NULL;
}

const char *sb_config_number_of(const struct sb_config *cfg, const char *alias)
{
    if (!cfg || !alias) {
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_contacts; i++) {
        if (strcmp(cfg->contacts[i].alias, alias) == 0) {
            return cfg->contacts[i].number;
        }
    }
    return NULL;
}

bool sb_config_allowed(const struct sb_config *cfg, const char *e164)
{
    char number[24];

    if (!cfg) {
        return false;
    }
    if (cfg->n_allow_to == 0) {
        return true;
    }
    if (!sb_e164_normalise(e164, number, sizeof(number))) {
        return false;
    }
    for (size_t i = 0; i < cfg->n_allow_to; i++) {
        const char *entry = cfg->allow_to[i];
        size_t n = strlen(entry);

        if (entry[n - 1] == '*' ? strncmp(number, entry, n - 1) == 0 : strcmp(number, entry) == 0) {
            return true;
        }
    }
    return false;
}
