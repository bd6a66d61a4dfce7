/* Sinch webhook signatures (facts section 8): HMAC-SHA256 of body "." nonce "." timestamp under
 * the secret's bytes as they are, standard base64 with padding, compared in constant time, and
 * the timestamp window of PRODUCT.md. Pure (the clock comes in as now_s), so Thread: any; the
 * webhook listener calls it on the loop. The optional x-sinch-webhook-signature-algorithm
 * header is not looked at here: only HmacSHA256 exists, and the listener may check it. */
#include "adapters/signature.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

#define MAC_LEN 32 /* SHA-256 */

/* 12 digits reach the year 33658: enough for seconds, while 13 is where a millisecond
 * timestamp (a likely mistake on the sending side) starts, and an int64_t cannot overflow. */
#define TS_MAX_DIGITS 12

/* Feeds body "." nonce "." timestamp to the MAC one part after the other, so the body (up to the
 * listener's 1 MiB) is never copied (facts 8.4 step 4). */
static enum sb_err hmac_parts(const char *secret, const void *body, size_t body_len,
                              const char *nonce, const char *timestamp, unsigned char mac[MAC_LEN])
{
    enum sb_err err = SB_E_BUG;
    EVP_MAC *hmac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    size_t mac_len = 0;
    /* EVP_MAC_init() takes a non-const params array; the string itself is only read. */
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };

    /* Fetched per call: OpenSSL caches fetched algorithms, and keeping one in a static would
     * need a once-guard for a cost nobody measures at 25 callbacks a second (facts section 9). */
    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!hmac) {
        goto out;
    }
    ctx = EVP_MAC_CTX_new(hmac);
    if (!ctx) {
        err = SB_E_NOMEM;
        goto out;
    }
    /* The key is the secret's UTF-8 bytes as configured, never base64-decoded (facts 8.2). */
    if (!EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params)) {
        goto out;
    }
    /* An empty body is legal: skip its update rather than hand OpenSSL a NULL pointer. */
    if (body_len > 0 && !EVP_MAC_update(ctx, body, body_len)) {
        goto out;
    }
    if (!EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)nonce, strlen(nonce)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)timestamp, strlen(timestamp))) {
        goto out;
    }
    if (!EVP_MAC_final(ctx, mac, &mac_len, MAC_LEN) || mac_len != MAC_LEN) {
        goto out;
    }
    err = SB_OK;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hmac);
    return err;
}

/* A secret of zero bytes authenticates nothing; config leaves webhook_secret NULL when unset and
 * the listener answers 503 then (PRODUCT.md), so reaching here with one is refused. */
static enum sb_err sign(const char *secret, const void *body, size_t body_len, const char *nonce,
                        const char *timestamp, char out[SB_SIGNATURE_LEN + 1])
{
    unsigned char mac[MAC_LEN];
    unsigned char b64[SB_SIGNATURE_LEN + 1];

    if (!secret || secret[0] == '\0' || (!body && body_len > 0) || !nonce || !timestamp) {
        return SB_E_INVAL;
    }
    enum sb_err err = hmac_parts(secret, body, body_len, nonce, timestamp, mac);
    if (err != SB_OK) {
        return err;
    }
    /* Standard alphabet, '=' padding, no newline: 44 characters and a NUL (facts 8.2). */
    if (EVP_EncodeBlock(b64, mac, MAC_LEN) != SB_SIGNATURE_LEN) {
        return SB_E_BUG;
    }
    memcpy(out, b64, sizeof(b64));
    return SB_OK;
}

enum sb_err sb_signature_compute(const char *secret, const void *body, size_t body_len,
                                 const char *nonce, const char *timestamp,
                                 char out[SB_SIGNATURE_LEN + 1])
{
    if (!out) {
        return SB_E_INVAL;
    }
    /* sign() writes out only on success, so a failure leaves the empty string */
    out[0] = '\0';
    return sign(secret, body, body_len, nonce, timestamp, out);
}

/* Decimal digits only: no sign, no spaces, no fraction, 1 to TS_MAX_DIGITS of them. strtoll()
 * would accept leading blanks and a sign, so the digits are read here. Returns 0 on success. */
static int parse_timestamp(const char *s, int64_t *ts)
{
    int64_t v = 0;
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        if (n == TS_MAX_DIGITS || s[n] < '0' || s[n] > '9') {
            return -1;
        }
        v = v * 10 + (s[n] - '0');
    }
    *ts = v;
    return n > 0 ? 0 : -1;
}

/* |now - ts| <= max_skew without overflow for any now_s: ts is in [0, 10^12), so the true
 * distance is below 2^64 and the unsigned subtraction is exact. A negative max_skew accepts
 * nothing (config keeps it in 1..86400). */
static int within_window(int64_t now_s, int64_t ts, long max_skew_s)
{
    if (max_skew_s < 0) {
        return 0;
    }
    uint64_t dist = now_s >= ts ? (uint64_t)now_s - (uint64_t)ts : (uint64_t)ts - (uint64_t)now_s;
    return dist <= (uint64_t)max_skew_s;
}

static int missing(const char *header)
{
    return !header || header[0] == '\0';
}

/* The order of the checks is part of the contract: missing, then malformed, then stale, then
 * mismatch. The first three look only at the headers, are cheap and do no work with the secret,
 * so a flood of junk or of replayed old captures costs no HMAC; and a verdict from them tells a
 * sender nothing about the secret. Stale before mismatch also makes the log say "stale" for a
 * replayed capture, which is what it is, rather than "mismatch". The listener answers 401 for
 * every verdict but ok (PRODUCT.md "HTTP listener"), so the order leaks nothing to the caller. */
enum sb_sig_verdict sb_signature_verify(const char *secret, const void *body, size_t body_len,
                                        const char *nonce, const char *timestamp,
                                        const char *signature, int64_t now_s, long max_skew_s)
{
    int64_t ts = 0;
    char expected[SB_SIGNATURE_LEN + 1];

    if (missing(nonce) || missing(timestamp) || missing(signature)) {
        return SB_SIG_MISSING;
    }
    if (parse_timestamp(timestamp, &ts) != 0) {
        return SB_SIG_MALFORMED;
    }
    if (!within_window(now_s, ts, max_skew_s)) {
        return SB_SIG_STALE;
    }
    /* The length is public (every real signature has 44 characters), so stopping on it leaks
     * nothing; it also keeps CRYPTO_memcmp() inside the received string. */
    if (strnlen(signature, SB_SIGNATURE_LEN + 1) != SB_SIGNATURE_LEN) {
        return SB_SIG_MISMATCH;
    }
    /* Fail closed: no secret, a bad body pointer or an OpenSSL failure never verifies. */
    if (sign(secret, body, body_len, nonce, timestamp, expected) != SB_OK) {
        return SB_SIG_MISMATCH;
    }
    /* Constant time over all 44 bytes: the time taken says nothing about how many leading
     * characters of a forged signature were right. */
    if (CRYPTO_memcmp(expected, signature, SB_SIGNATURE_LEN) != 0) {
        return SB_SIG_MISMATCH;
    }
    return SB_SIG_OK;
}

const char *sb_sig_verdict_name(enum sb_sig_verdict v)
{
    switch (v) {
    case SB_SIG_OK:
        return "ok";
    case SB_SIG_MISSING:
        return "missing";
    case SB_SIG_MALFORMED:
        return "malformed";
    case SB_SIG_STALE:
        return "stale";
    case SB_SIG_MISMATCH:
        return "mismatch";
    }
    return "unknown";
}
