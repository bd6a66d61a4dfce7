/* Tables for adapters/sinch/sinch_token.c: JWT exp, token expiry and validity on a fake clock,
 * the token endpoint's 429 backoff with a chosen random number, Retry-After in its four forms,
 * the "expired" rule of WWW-Authenticate, token answers and error texts. No network. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/sinch_token.h"
#include "check.h"

/* Builds "<header>.<base64url(payload)>.<sig>" into out. */
static const char *make_jwt(const char *payload, char *out, size_t out_len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = (const unsigned char *)payload;
    size_t len = strlen(payload), n = 0;

    n += (size_t)snprintf(out, out_len, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.");
    for (size_t i = 0; i < len && n + 5 < out_len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (i + 2 < len) {
            v |= p[i + 2];
        }
        out[n++] = abc[(v >> 18) & 63];
        out[n++] = abc[(v >> 12) & 63];
        if (i + 1 < len) {
            out[n++] = abc[(v >> 6) & 63];
        }
        if (i + 2 < len) {
            out[n++] = abc[v & 63];
        }
    }
    snprintf(out + n, out_len - n, ".c2lnbmF0dXJl");
    return out;
}

static void test_jwt_exp(void)
{
    static const struct {
        const char *jwt; /* literal token, or NULL to build one from payload */
        const char *payload;
        bool ok;
        int64_t exp;
    } rows[] = {
        /* the example of facts 2.1 */
        {"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3MTg0NjUwMjV9.c2lnbmF0dXJl", NULL, true,
         1718465025},
        {NULL, "{\"exp\":1718465025}", true, 1718465025},
        {NULL, "{\"sub\":\"k\",\"exp\":2000000000,\"iat\":1999996400}", true, 2000000000},
        {NULL, "{\"exp\":1718465025.75}", true, 1718465025},
        {NULL, "{\"exp\":1}", true, 1},
        /* padded with '=' and standard base64's symbols are tolerated */
        {"h.eyJleHAiOjE3MTg0NjUwMjV9==.s", NULL, true, 1718465025},
        /* bad rows */
        {NULL, "{\"exp\":\"1718465025\"}", false, 0},
        {NULL, "{\"exp\":0}", false, 0},
        {NULL, "{\"exp\":-5}", false, 0},
        {NULL, "{\"exp\":null}", false, 0},
        {NULL, "{\"exp\":true}", false, 0},
        {NULL, "{\"sub\":\"x\"}", false, 0},
        {NULL, "[1718465025]", false, 0},
        {NULL, "{\"exp\":1718465025", false, 0},
        {NULL, "not json", false, 0},
        {NULL, "{\"exp\":1e300}", false, 0},
        {"eyJleHAiOjE3MTg0NjUwMjV9", NULL, false, 0},       /* one segment */
        {"h.eyJleHAiOjE3MTg0NjUwMjV9", NULL, false, 0},     /* two segments */
        {"h.eyJleHAiOjE3MTg0NjUwMjV9.s.x", NULL, false, 0}, /* four segments */
        {"h..s", NULL, false, 0},                           /* empty payload */
        {"h.eyJleHAi*jE3MTg0NjUwMjV9.s", NULL, false, 0},   /* bad symbol */
        {"h.eyJleHAiOjE3MTg0NjUwMjV9a.s", NULL, false, 0},  /* length % 4 == 1 */
        {"h.eyJle HAiOjE3MTg0NjUwMjV9.s", NULL, false, 0},  /* space */
        {"", NULL, false, 0},
        {"opaque-token-not-a-jwt", NULL, false, 0},
    };
    char buf[512];

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *jwt = rows[i].jwt ? rows[i].jwt : make_jwt(rows[i].payload, buf, sizeof(buf));
        int64_t exp = -7;
        bool ok = sb_sinch_token_jwt_exp(jwt, &exp);
        CHECKF(ok == rows[i].ok, "row %zu (%s): ok %d", i, jwt, ok);
        if (ok && rows[i].ok) {
            CHECKF(exp == rows[i].exp, "row %zu: exp %lld", i, (long long)exp);
        }
    }
    int64_t exp = 0;
    CHECK(!sb_sinch_token_jwt_exp(NULL, &exp));

    /* an oversized payload is refused, not decoded */
    size_t big = 20000;
    char *huge = malloc(big + 5);
    if (huge) {
        memset(huge, 'A', big + 4);
        huge[0] = 'h';
        huge[1] = '.';
        huge[big + 2] = '.';
        huge[big + 3] = 's';
        huge[big + 4] = '\0';
        CHECK(!sb_sinch_token_jwt_exp(huge, &exp));
        free(huge);
    }
}

static void test_expiry(void)
{
    char jwt[256];
    const int64_t t0 = 1718461425000; /* exp of the payload below minus 3600 s */

    make_jwt("{\"exp\":1718465025}", jwt, sizeof(jwt));
    static const struct {
        bool use_jwt;
        long expires_in;
        int64_t fetched_ms;
        int64_t want;
    } rows[] = {
        {true, 3599, 1718461425000, 1718465025000},  /* the JWT wins over expires_in */
        {true, 0, 1718461425000, 1718465025000},     /* no expires_in: the JWT alone */
        {false, 3599, 1718461425000, 1718465024000}, /* no JWT: fetched + expires_in */
        {false, 1, 5000, 6000},
        {true, 60, 1718465025000, 1718465085000}, /* exp not after the fetch: expires_in */
        {true, 60, 1818465025000, 1818465085000}, /* clock far ahead of exp: expires_in */
        {false, 0, 1718461425000, -1},            /* nothing to go by */
        {false, -10, 1718461425000, -1},
        {true, 0, 1718465025000, -1}, /* stale JWT and no expires_in */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t got = sb_sinch_token_expiry_ms(rows[i].use_jwt ? jwt : "opaque", rows[i].expires_in,
                                               rows[i].fetched_ms);
        CHECKF(got == rows[i].want, "row %zu: got %lld want %lld", i, (long long)got,
               (long long)rows[i].want);
    }
    CHECK(sb_sinch_token_expiry_ms(NULL, 10, t0) == t0 + 10000);
}

static void test_valid(void)
{
    static const struct {
        int64_t fetched, expires, now;
        bool valid;
    } rows[] = {
        /* an hour-long token: valid until 60 s before it expires */
        {0, 3600000, 0, true},
        {0, 3600000, 3539999, true},
        {0, 3600000, 3540000, false},
        {0, 3600000, 3599999, false},
        {0, 3600000, 3600000, false},
        {0, 3600000, 9999999, false},
        {1000000, 4600000, 4539999, true},
        {1000000, 4600000, 4540000, false},
        /* exactly two minutes: the margin is still 60 s */
        {0, 120000, 59999, true},
        {0, 120000, 60000, false},
        /* a 10 s token: the margin shrinks to half its life */
        {0, 10000, 4999, true},
        {0, 10000, 5000, false},
        {0, 1000, 499, true},
        {0, 1000, 500, false},
        /* no expiry */
        {0, 0, 0, false},
        {0, -1, 0, false},
        /* a clock that went backwards before the fetch still sees the token as valid */
        {5000000, 8600000, 4000000, true},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bool got = sb_sinch_token_valid(rows[i].fetched, rows[i].expires, rows[i].now);
        CHECKF(got == rows[i].valid, "row %zu: now %lld", i, (long long)rows[i].now);
    }
}

static void test_backoff(void)
{
    static const struct {
        unsigned attempt;
        long retry_after;
        uint64_t rnd;
        long want;
    } rows[] = {
        /* full jitter in [0, 1000 * 4^attempt] */
        {0, -1, 0, 0},
        {0, -1, 1000, 1000},
        {0, -1, 1001, 0},
        {0, -1, 500, 500},
        {1, -1, 4000, 4000},
        {1, -1, 4001, 0},
        {2, -1, 16000, 16000},
        {2, -1, 16001, 0},
        {2, -1, 32001, 16000},
        {7, -1, 64000, 64000}, /* attempts past the last are clamped */
        {7, -1, 64001, 0},
        /* Retry-After plus up to 250 ms */
        {0, 2000, 0, 2000},
        {0, 2000, 250, 2250},
        {0, 2000, 251, 2000},
        {2, 0, 100, 100},
        {1, 86400001L * 10, 0, SB_SINCH_RETRY_AFTER_MAX_MS},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        long got = sb_sinch_token_backoff_ms(rows[i].attempt, rows[i].retry_after, rows[i].rnd);
        CHECKF(got == rows[i].want, "row %zu: got %ld want %ld", i, got, rows[i].want);
    }
    /* every random number lands in range, and both ends are reachable */
    uint64_t x = 88172645463325252ull;
    for (unsigned attempt = 0; attempt < 3; attempt++) {
        long cap = 1000L << (2 * attempt), lo = cap, hi = 0;
        bool in_range = true;
        for (int i = 0; i < 200000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            long d = sb_sinch_token_backoff_ms(attempt, -1, x);
            in_range = in_range && d >= 0 && d <= cap;
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        CHECKF(in_range, "attempt %u out of range", attempt);
        CHECKF(lo <= cap / 100 && hi >= cap - cap / 100, "attempt %u: %ld..%ld", attempt, lo, hi);
    }
    CHECK(sb_sinch_token_backoff_ms(0, -1, UINT64_MAX) == (long)(UINT64_MAX % 1001));
}

static void test_retry_after(void)
{
    const int64_t now = 784111777000; /* Sun, 06 Nov 1994 08:49:37 GMT */
    static const struct {
        const char *value;
        long want;
    } rows[] = {
        {"2", 2000},
        {"0", 0},
        {"120", 120000},
        {"  7  ", 7000},
        {"007", 7000},
        {"86400", 86400000},
        {"86401", SB_SINCH_RETRY_AFTER_MAX_MS},
        {"99999999999999999999999999", SB_SINCH_RETRY_AFTER_MAX_MS},
        /* the three HTTP-date forms of RFC 9110 */
        {"Sun, 06 Nov 1994 08:49:47 GMT", 10000},
        {"Sunday, 06-Nov-94 08:49:47 GMT", 10000},
        {"Sun Nov  6 08:49:47 1994", 10000},
        {"Sun, 06 Nov 1994 08:49:37 GMT", 0},
        {"Sun, 06 Nov 1994 08:49:36 GMT", 0}, /* in the past */
        {"Sat, 01 Jan 1994 00:00:00 GMT", 0},
        {"Mon, 07 Nov 1994 08:49:37 GMT", 86400000},
        {"Tue, 08 Nov 1994 08:49:37 GMT", SB_SINCH_RETRY_AFTER_MAX_MS},
        {"sun, 06 nov 1994 09:49:37 GMT", 3600000}, /* names in any case */
        {"Sun, 06 Dec 1994 08:49:37 GMT", SB_SINCH_RETRY_AFTER_MAX_MS},
        /* bad rows */
        {"", -1},
        {"   ", -1},
        {"-1", -1},
        {"+5", -1},
        {"1.5", -1},
        {"5s", -1},
        {"2 3", -1},
        {"soon", -1},
        {"Sun, 06 Nov 1994 08:49:47 UTC", -1},
        {"Sun, 06 Nov 1994 08:49:47", -1},
        {"Sun, 06 Nov 1994 08:49:47 GMT junk", -1},
        {"Sun, 32 Nov 1994 08:49:47 GMT", -1},
        {"Sun, 00 Nov 1994 08:49:47 GMT", -1},
        {"Sun, 06 Nox 1994 08:49:47 GMT", -1},
        {"Sun, 06 Nov 1994 24:49:47 GMT", -1},
        {"Sun, 06 Nov 1994 08:60:47 GMT", -1},
        {"Sun, 06 Nov 1994 08:49 GMT", -1},
        {"Sun, 06 Nov 94 08:49:47 GMT", 10000}, /* two-digit year, pivot 70 */
        {"Sun, 06 Nov 199 08:49:47 GMT", -1},
        {"Sun, 06 Nov 1969 08:49:47 GMT", -1},
        {"Sun Nov  6 08:49:47 94", -1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        long got = sb_sinch_token_retry_after_ms(rows[i].value, now);
        CHECKF(got == rows[i].want, "row %zu \"%s\": got %ld want %ld", i, rows[i].value, got,
               rows[i].want);
    }
    CHECK(sb_sinch_token_retry_after_ms(NULL, now) == -1);
    /* a leap day, far from the fake clock's day */
    CHECK(sb_sinch_token_retry_after_ms("Thu, 29 Feb 2024 00:00:05 GMT", 1709164800000) == 5000);
    CHECK(sb_sinch_token_retry_after_ms("Fri, 01 Mar 2024 00:00:00 GMT",
                                        1709164800000 + 86399000) == 1000);
    CHECK(sb_sinch_token_retry_after_ms("Thu, 01 Jan 1970 00:00:01 GMT", 0) == 1000);
}

static void test_says_expired(void)
{
    static const struct {
        const char *value;
        bool expired;
    } rows[] = {
        /* the values SDK tests use (facts 2.2) and the simulator's */
        {"Bearer error=\"invalid_token\", error_description=\"token expired\"", true},
        {"token expired", true},
        {"token invalid: expired", true},
        {"Bearer error=\"expired\"", true},
        {"Bearer error=\"EXPIRED\"", true},
        {"ExPiReD", true},
        {"expiredexpired", true},
        {"Bearer error=\"invalid_token\"", false},
        {"Bearer realm=\"sinch\"", false},
        {"expire", false},
        {"expi red", false},
        {"xpired", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        CHECKF(sb_sinch_token_says_expired(rows[i].value) == rows[i].expired, "row %zu: %s", i,
               rows[i].value);
    }
    CHECK(!sb_sinch_token_says_expired(NULL));
}

static void test_parse(void)
{
    char jwt[256], body[512];
    const int64_t t0 = 1718461425000;

    make_jwt("{\"exp\":1718465025}", jwt, sizeof(jwt));
    static const struct {
        const char *body; /* "%s" is replaced by a JWT whose exp is t0 + 3600 s */
        enum sb_err err;
        int64_t expires;
        bool is_jwt;
    } rows[] = {
        {"{\"access_token\":\"abc\",\"expires_in\":3599,\"scope\":\"\",\"token_type\":\"bearer\"}",
         SB_OK, 1718465024000, false},
        {"{\"access_token\":\"abc\",\"expires_in\":3599,\"token_type\":\"Bearer\"}", SB_OK,
         1718465024000, false},
        {"{\"access_token\":\"abc\",\"expires_in\":10}", SB_OK, 1718461435000, false},
        {"{\"access_token\":\"abc\",\"expires_in\":10.9}", SB_OK, 1718461435000, false},
        {"{\"access_token\":\"%s\",\"expires_in\":3599,\"token_type\":\"bearer\"}", SB_OK,
         1718465025000, true},
        {"{\"access_token\":\"%s\"}", SB_OK, 1718465025000, true},
        /* bad rows */
        {"{\"access_token\":\"abc\",\"expires_in\":3599,\"token_type\":\"mac\"}", SB_E_INVAL, 0,
         false},
        {"{\"access_token\":\"abc\",\"expires_in\":3599,\"token_type\":7}", SB_E_INVAL, 0, false},
        {"{\"access_token\":\"\",\"expires_in\":3599}", SB_E_INVAL, 0, false},
        {"{\"access_token\":42,\"expires_in\":3599}", SB_E_INVAL, 0, false},
        {"{\"expires_in\":3599}", SB_E_INVAL, 0, false},
        {"{\"access_token\":\"abc\"}", SB_E_INVAL, 0, false},
        {"{\"access_token\":\"abc\",\"expires_in\":\"3599\"}", SB_E_INVAL, 0, false},
        {"{\"access_token\":\"abc\",\"expires_in\":-1}", SB_E_INVAL, 0, false},
        {"{\"access_token\":\"abc\",\"expires_in\":0}", SB_E_INVAL, 0, false},
        {"{\"access_token\":\"abc\",\"expires_in\":3599", SB_E_INVAL, 0, false},
        {"[\"abc\"]", SB_E_INVAL, 0, false},
        {"<html>502 Bad Gateway</html>", SB_E_INVAL, 0, false},
        {"", SB_E_INVAL, 0, false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *tok = NULL;
        int64_t expires = 0;
        const char *mark = strstr(rows[i].body, "%s");
        if (mark) {
            snprintf(body, sizeof(body), "%.*s%s%s", (int)(mark - rows[i].body), rows[i].body, jwt,
                     mark + 2);
        } else {
            snprintf(body, sizeof(body), "%s", rows[i].body);
        }
        enum sb_err err = sb_sinch_token_parse(body, strlen(body), t0, &tok, &expires);
        CHECKF(err == rows[i].err, "row %zu: %s", i, sb_err_name(err));
        if (err == SB_OK && rows[i].err == SB_OK) {
            CHECKF(expires == rows[i].expires, "row %zu: expires %lld", i, (long long)expires);
            const char *want = rows[i].is_jwt ? (const char *)jwt : "abc";
            CHECK_STR(tok, want);
        } else {
            CHECK(tok == NULL);
        }
        free(tok);
    }
    char *tok = NULL;
    int64_t expires = 0;
    CHECK(sb_sinch_token_parse(NULL, 0, t0, &tok, &expires) == SB_E_INVAL);
    /* the length is honoured: the answer is not read past it */
    const char *two = "{\"access_token\":\"abc\",\"expires_in\":5}garbage";
    CHECK(sb_sinch_token_parse(two, strlen(two) - 7, t0, &tok, &expires) == SB_OK);
    CHECK(expires == t0 + 5000);
    free(tok);
}

static void test_error_text(void)
{
    static const struct {
        const char *body;
        const char *want;
    } rows[] = {
        {"{\"error\":\"invalid_client\",\"error_description\":\"Client authentication failed\"}",
         "Client authentication failed"},
        {"{\"error\":\"invalid_client\"}", "invalid_client"},
        {"{\"error\":\"invalid_client\",\"error_description\":\"\"}", "invalid_client"},
        {"{\"error\":{\"code\":404,\"message\":\"App not found\",\"status\":\"NOT_FOUND\"}}",
         "App not found"},
        {"{\"error\":{\"code\":404}}", ""},
        {"{\"error\":\"line\\nbreak\\u0007\"}", "line?break?"},
        {"<html>bad gateway</html>", ""},
        {"[]", ""},
        {"", ""},
    };
    char out[64];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        sb_sinch_token_error_text(rows[i].body, strlen(rows[i].body), out, sizeof(out));
        const char *got = out;
        CHECK_STR(got, rows[i].want);
    }
    char small[6];
    const char *b = "{\"error_description\":\"a long description\"}";
    sb_sinch_token_error_text(b, strlen(b), small, sizeof(small));
    const char *got = small;
    CHECK_STR(got, "a lon");
    sb_sinch_token_error_text(NULL, 0, small, sizeof(small));
    CHECK_STR(got, "");
}

int main(void)
{
    test_jwt_exp();
    test_expiry();
    test_valid();
    test_backoff();
    test_retry_after();
    test_says_expired();
    test_parse();
    test_error_text();
    return check_report();
}
