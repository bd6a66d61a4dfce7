/* The pure rules of the Sinch client's OAuth handling (facts section 2) and Retry-After
 * (facts 4.3): JWT exp, token validity with the 60 s margin, the token endpoint's 429 backoff.
 * Times come in as arguments, never from a clock, so tests/unit/test_sinch_token.c runs them on a
 * fake clock. Called by sinch_http.c on the Sinch thread and by sb_sinch_check(). */
#include "adapters/sinch_token.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A JWT's payload is a few hundred bytes; anything much larger is not a Sinch token. */
#define JWT_SEGMENT_MAX 8192

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    /* base64url's two symbols, and standard base64's in case a server pads or mixes them */
    if (c == '-' || c == '+') {
        return 62;
    }
    if (c == '_' || c == '/') {
        return 63;
    }
    return -1;
}

/* Decodes `len` bytes of base64url (padding optional) into `out` (at least len * 3 / 4 + 1
 * bytes). Returns the decoded length, or -1 on a bad symbol or length. */
static long b64url_decode(const char *in, size_t len, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;

    while (len > 0 && in[len - 1] == '=') {
        len--;
    }
    if (len % 4 == 1) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)n;
}

bool sb_sinch_token_jwt_exp(const char *jwt, int64_t *exp_s)
{
    const char *dot1, *dot2;
    unsigned char *raw = NULL;
    json_t *claims = NULL;
    bool ok = false;
    long n;

    if (!jwt) {
        return false;
    }
    dot1 = strchr(jwt, '.');
    if (!dot1) {
        return false;
    }
    dot2 = strchr(dot1 + 1, '.');
    if (!dot2 || strchr(dot2 + 1, '.')) {
        return false;
    }
    size_t seg_len = (size_t)(dot2 - (dot1 + 1));
    if (seg_len == 0 || seg_len > JWT_SEGMENT_MAX) {
        return false;
    }
    raw = malloc(seg_len * 3 / 4 + 1);
    if (!raw) {
        return false;
    }
    n = b64url_decode(dot1 + 1, seg_len, raw);
    if (n <= 0) {
        goto out;
    }
    claims = json_loadb((const char *)raw, (size_t)n, 0, NULL);
    json_t *exp = json_object_get(claims, "exp"); /* NULL-safe: NULL when claims is NULL */
    if (json_is_integer(exp) && json_integer_value(exp) > 0) {
        *exp_s = (int64_t)json_integer_value(exp);
        ok = true;
    } else if (json_is_real(exp) && json_real_value(exp) >= 1.0 && json_real_value(exp) < 9.2e15) {
        *exp_s = (int64_t)json_real_value(exp);
        ok = true;
    }
out:
    json_decref(claims);
    free(raw);
    return ok;
}

int64_t sb_sinch_token_expiry_ms(const char *jwt, long expires_in, int64_t fetched_ms)
{
    int64_t exp_s;

    /* An exp that is not after the fetch (a clock far off, or a stale token) would make every
     * request fetch again; expires_in is relative, so it survives a wrong clock. */
    if (sb_sinch_token_jwt_exp(jwt, &exp_s) && exp_s < INT64_MAX / 1000 &&
        exp_s * 1000 > fetched_ms) {
        return exp_s * 1000;
    }
    if (expires_in > 0 && expires_in < INT32_MAX) {
        return fetched_ms + (int64_t)expires_in * 1000;
    }
    return -1;
}

bool sb_sinch_token_valid(int64_t fetched_ms, int64_t expires_ms, int64_t now_ms)
{
    int64_t margin = SB_SINCH_TOKEN_MARGIN_MS;
    int64_t lifetime = expires_ms - fetched_ms;

    if (expires_ms <= 0) {
        return false;
    }
    if (lifetime > 0 && lifetime / 2 < margin) {
        margin = lifetime / 2;
    }
    return now_ms < expires_ms - margin;
}

long sb_sinch_token_backoff_ms(unsigned attempt, long retry_after_ms, uint64_t rnd)
{
    if (retry_after_ms >= 0) {
        if (retry_after_ms > SB_SINCH_RETRY_AFTER_MAX_MS) {
            retry_after_ms = SB_SINCH_RETRY_AFTER_MAX_MS;
        }
        return retry_after_ms + (long)(rnd % (SB_SINCH_TOKEN_RETRY_AFTER_JITTER_MS + 1));
    }
    if (attempt > SB_SINCH_TOKEN_MAX_RETRIES) {
        attempt = SB_SINCH_TOKEN_MAX_RETRIES;
    }
    uint64_t cap = SB_SINCH_TOKEN_BACKOFF_BASE_MS;
    for (unsigned i = 0; i < attempt; i++) {
        cap *= 4;
    }
    return (long)(rnd % (cap + 1));
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static const char *skip_spaces(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

/* Reads 1 to `max` digits. */
static const char *read_num(const char *p, int max, int *out)
{
    int v = 0, n = 0;
    while (n < max && isdigit((unsigned char)p[n])) {
        v = v * 10 + (p[n] - '0');
        n++;
    }
    if (n == 0) {
        return NULL;
    }
    *out = v;
    return p + n;
}

static const char *read_month(const char *p, int *month)
{
    static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    for (int i = 0; i < 12; i++) {
        if (strncasecmp(p, names + (size_t)i * 3, 3) == 0) {
            *month = i + 1;
            return p + 3;
        }
    }
    return NULL;
}

/* "08:49:37" */
static const char *read_time(const char *p, int *h, int *m, int *s)
{
    if (!(p = read_num(p, 2, h)) || *p++ != ':' || !(p = read_num(p, 2, m)) || *p++ != ':' ||
        !(p = read_num(p, 2, s))) {
        return NULL;
    }
    return p;
}

/* An HTTP-date in seconds since the epoch (RFC 9110 5.6.7): IMF-fixdate
 * "Sun, 06 Nov 1994 08:49:37 GMT", obsolete RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT", or
 * asctime "Sun Nov  6 08:49:37 1994". */
static bool parse_http_date(const char *p, int64_t *out)
{
    int day, month, year, h, m, s;

    while (isalpha((unsigned char)*p)) {
        p++; /* the day name, not checked against the date */
    }
    if (*p == ',') {
        p++;
    }
    p = skip_spaces(p);
    if (isdigit((unsigned char)*p)) {
        /* IMF-fixdate or RFC 850 */
        int year_digits;
        const char *y0;
        if (!(p = read_num(p, 2, &day)) || (*p != ' ' && *p != '-')) {
            return false;
        }
        p++;
        if (!(p = read_month(p, &month)) || (*p != ' ' && *p != '-')) {
            return false;
        }
        y0 = ++p;
        if (!(p = read_num(p, 4, &year))) {
            return false;
        }
        year_digits = (int)(p - y0);
        if (year_digits == 2) {
            /* RFC 850's two-digit year; RFC 9110 wants the most recent matching past year,
             * which this approximates with a fixed pivot. */
            year += year < 70 ? 2000 : 1900;
        } else if (year_digits != 4) {
            return false;
        }
        p = skip_spaces(p);
        if (!(p = read_time(p, &h, &m, &s))) {
            return false;
        }
        p = skip_spaces(p);
        if (strncmp(p, "GMT", 3) != 0) {
            return false;
        }
        p += 3;
    } else {
        /* asctime */
        if (!(p = read_month(p, &month))) {
            return false;
        }
        p = skip_spaces(p);
        if (!(p = read_num(p, 2, &day)) || *p != ' ') {
            return false;
        }
        p = skip_spaces(p);
        if (!(p = read_time(p, &h, &m, &s))) {
            return false;
        }
        p = skip_spaces(p);
        const char *y0 = p;
        if (!(p = read_num(p, 4, &year)) || p - y0 != 4) {
            return false;
        }
    }
    if (*skip_spaces(p) != '\0') {
        return false;
    }
    if (day < 1 || day > 31 || h > 23 || m > 59 || s > 60 || year < 1970) {
        return false;
    }
    *out = days_from_civil(year, (unsigned)month, (unsigned)day) * 86400 + (long)h * 3600 +
           (long)m * 60 + s;
    return true;
}

long sb_sinch_token_retry_after_ms(const char *value, int64_t now_ms)
{
    const char *p;
    int64_t when_s;

    if (!value) {
        return -1;
    }
    p = skip_spaces(value);
    if (isdigit((unsigned char)*p)) {
        /* delta-seconds: 1*DIGIT */
        int64_t secs = 0;
        while (isdigit((unsigned char)*p)) {
            if (secs <= SB_SINCH_RETRY_AFTER_MAX_MS / 1000) {
                secs = secs * 10 + (*p - '0');
            }
            p++;
        }
        if (*skip_spaces(p) != '\0') {
            return -1;
        }
        if (secs > SB_SINCH_RETRY_AFTER_MAX_MS / 1000) {
            return SB_SINCH_RETRY_AFTER_MAX_MS;
        }
        return (long)(secs * 1000);
    }
    if (!parse_http_date(p, &when_s)) {
        return -1;
    }
    int64_t delta = when_s * 1000 - now_ms;
    if (delta < 0) {
        return 0;
    }
    if (delta > SB_SINCH_RETRY_AFTER_MAX_MS) {
        return SB_SINCH_RETRY_AFTER_MAX_MS;
    }
    return (long)delta;
}

bool sb_sinch_token_says_expired(const char *www_authenticate)
{
    static const char word[] = "expired";
    const size_t n = sizeof(word) - 1;

    if (!www_authenticate) {
        return false;
    }
    for (const char *p = www_authenticate; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == word[i]) {
            i++;
        }
        if (i == n) {
            return true;
        }
    }
    return false;
}

enum sb_err sb_sinch_token_parse(const char *body, size_t len, int64_t fetched_ms,
                                 char **access_token, int64_t *expires_ms)
{
    enum sb_err err = SB_E_INVAL;
    json_t *root = NULL;
    long expires_in = 0;

    if (!body) {
        return SB_E_INVAL;
    }
    root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        goto out;
    }
    json_t *tok = json_object_get(root, "access_token");
    json_t *type = json_object_get(root, "token_type");
    json_t *exp_in = json_object_get(root, "expires_in");
    if (!json_is_string(tok) || json_string_length(tok) == 0) {
        goto out;
    }
    /* The docs show "Bearer", the skill "bearer" (facts 2.1). */
    if (type && (!json_is_string(type) || strcasecmp(json_string_value(type), "bearer") != 0)) {
        goto out;
    }
    if (json_is_integer(exp_in)) {
        json_int_t v = json_integer_value(exp_in);
        expires_in = v > 0 && v < INT32_MAX ? (long)v : 0;
    } else if (json_is_real(exp_in)) {
        double v = json_real_value(exp_in);
        expires_in = v >= 1.0 && v < INT32_MAX ? (long)v : 0;
    }
    int64_t expiry = sb_sinch_token_expiry_ms(json_string_value(tok), expires_in, fetched_ms);
    if (expiry < 0) {
        goto out;
    }
    *access_token = strdup(json_string_value(tok));
    if (!*access_token) {
        err = SB_E_NOMEM;
        goto out;
    }
    *expires_ms = expiry;
    err = SB_OK;
out:
    json_decref(root);
    return err;
}

static void copy_printable(const char *s, char *out, size_t out_len)
{
    size_t n = 0;
    for (; s && *s && n + 1 < out_len; s++) {
        unsigned char c = (unsigned char)*s;
        out[n++] = (char)((c < 0x20 || c == 0x7f) ? '?' : c);
    }
    out[n] = '\0';
}

void sb_sinch_token_error_text(const char *body, size_t len, char *out, size_t out_len)
{
    json_t *root;
    const char *text = NULL;

    if (out_len == 0) {
        return;
    }
    out[0] = '\0';
    if (!body || len == 0) {
        return;
    }
    root = json_loadb(body, len, 0, NULL);
    if (json_is_object(root)) {
        json_t *desc = json_object_get(root, "error_description");
        json_t *e = json_object_get(root, "error");
        if (json_is_string(desc) && json_string_length(desc) > 0) {
            text = json_string_value(desc);
        } else if (json_is_string(e)) {
            text = json_string_value(e);
        } else if (json_is_object(e) && json_is_string(json_object_get(e, "message"))) {
            text = json_string_value(json_object_get(e, "message"));
        }
    }
    copy_printable(text, out, out_len);
    json_decref(root);
}
