/* libFuzzer target: the webhook signature check, sb_signature_verify(), and its twin
 * sb_signature_compute(). Input: one byte for the clock, then secret, nonce, timestamp and
 * signature, each ended by a NUL byte, then the body (any bytes, to the end):
 *   byte 0, bits 0-2: now_s from a table (the test vectors' times, 0, the 12-digit limit,
 *           INT64_MAX and INT64_MIN); bits 3-5: max_skew_s from a table (0, 1, 300, 3600,
 *           86400, -1, LONG_MAX, LONG_MIN); bit 6: an empty header is passed as NULL (absent);
 *           bit 7: an empty body is passed as NULL.
 * Oracles, not only "no crash":
 *   - the verdict equals one worked out here from facts section 8 with a second HMAC written
 *     independently (OpenSSL's one-shot HMAC() over the joined bytes, where signature.c feeds
 *     the parts to EVP_MAC): missing, then malformed (not 1 to 12 digits), then stale (exact
 *     128-bit distance), then a match of all 44 characters, else mismatch; no secret never
 *     verifies;
 *   - compute() gives that same 44-character signature, and verify() accepts it whenever the
 *     headers are fine;
 *   - one bit flipped anywhere in that signature, or in the body, is always rejected (a check
 *     that decoded base64 leniently, or compared a prefix, would accept some). The bit is picked
 *     from the input, so the corpus covers every position rather than each run paying 352 HMACs. */
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/signature.h"
#include "fuzz.h"

static const int64_t clocks[8] = {
    1700000000, 1700000001,   1634579353, 1718461425, /* vectors C, D, A, B of facts 8.5 */
    0,          999999999999, INT64_MAX,  INT64_MIN,
};
static const long skews[8] = {300, 0, 1, 3600, 86400, -1, LONG_MAX, LONG_MIN};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

/* The next NUL-ended field of [*p, end), or "" when the input ran out. */
static const char *field(const char **p, const char *end)
{
    const char *s = *p;
    const char *nul = memchr(s, '\0', (size_t)(end - s));

    if (!nul) {
        *p = end;
        return "";
    }
    *p = nul + 1;
    return s;
}

/* base64(HMAC-SHA256(secret, body "." nonce "." timestamp)) into out[45]; false on failure. */
static bool expected_signature(const char *secret, const char *body, size_t body_len,
                               const char *nonce, const char *ts, char out[SB_SIGNATURE_LEN + 1])
{
    size_t nn = strlen(nonce);
    size_t tn = strlen(ts);
    size_t len = body_len + 1 + nn + 1 + tn;
    unsigned char *msg = malloc(len + 1); /* +1: the NUL snprintf() ends with */
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    bool ok;

    if (!msg) {
        return false;
    }
    if (body_len > 0) {
        memcpy(msg, body, body_len);
    }
    snprintf((char *)msg + body_len, len + 1 - body_len, ".%s.%s", nonce, ts);
    ok = HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, len, mac, &mac_len) != NULL &&
         mac_len == 32 && EVP_EncodeBlock((unsigned char *)out, mac, 32) == SB_SIGNATURE_LEN;
    free(msg);
    return ok;
}

/* Facts 8.3 and signature.h: decimal seconds, 1 to 12 digits, no sign, no blanks. */
static bool timestamp_ok(const char *ts, int64_t *out)
{
    size_t n = strspn(ts, "0123456789");
    int64_t v = 0;

    if (n == 0 || n > 12 || ts[n] != '\0') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (ts[i] - '0');
    }
    *out = v;
    return true;
}

static bool fresh(int64_t now, int64_t ts, long skew)
{
    /* 128 bits hold any difference of two int64_t: no wrap-around to reason about here. */
    __int128 d = (__int128)now - (__int128)ts;

    if (d < 0) {
        d = -d;
    }
    return skew >= 0 && d <= (__int128)skew;
}

static enum sb_sig_verdict expected_verdict(const char *secret, const char *body, size_t len,
                                            const char *nonce, const char *ts, const char *sig,
                                            int64_t now, long skew)
{
    char want[SB_SIGNATURE_LEN + 1];
    int64_t t = 0;

    if (!nonce || !*nonce || !ts || !*ts || !sig || !*sig) {
        return SB_SIG_MISSING;
    }
    if (!timestamp_ok(ts, &t)) {
        return SB_SIG_MALFORMED;
    }
    if (!fresh(now, t, skew)) {
        return SB_SIG_STALE;
    }
    if (!*secret) {
        return SB_SIG_MISMATCH;
    }
    FUZZ_CHECK(expected_signature(secret, body, len, nonce, ts, want), "HMAC failed");
    return strcmp(want, sig) == 0 ? SB_SIG_OK : SB_SIG_MISMATCH;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data + 1;
    const char *end = (const char *)data + size;
    const char *secret;
    const char *nonce;
    const char *ts;
    const char *sig;
    const char *body;
    size_t body_len;
    int64_t now;
    long skew;
    bool nulls;
    char computed[SB_SIGNATURE_LEN + 1];
    enum sb_sig_verdict got;
    enum sb_sig_verdict want;
    enum sb_err rc;
    size_t pick = 0;

    if (size == 0) {
        return 0;
    }
    now = clocks[data[0] & 7];
    skew = skews[(data[0] >> 3) & 7];
    nulls = data[0] & 0x40;
    secret = field(&p, end);
    nonce = field(&p, end);
    ts = field(&p, end);
    sig = field(&p, end);
    body = p;
    body_len = (size_t)(end - p);
    if (nulls) {
        nonce = *nonce ? nonce : NULL;
        ts = *ts ? ts : NULL;
        sig = *sig ? sig : NULL;
    }
    if (body_len == 0 && (data[0] & 0x80)) {
        body = NULL;
    }

    /* 1. The received signature. */
    got = sb_signature_verify(secret, body, body_len, nonce, ts, sig, now, skew);
    want = expected_verdict(secret, body, body_len, nonce, ts, sig, now, skew);
    FUZZ_CHECK(got == want, "verdict %s, expected %s", sb_sig_verdict_name(got),
               sb_sig_verdict_name(want));

    if (!nonce || !ts) {
        return 0; /* compute() needs both; verify() said "missing" above */
    }
    /* 2. compute() agrees with the independent HMAC, and verify() takes what it computed. */
    rc = sb_signature_compute(secret, body, body_len, nonce, ts, computed);
    if (!*secret) {
        FUZZ_CHECK(rc == SB_E_INVAL && computed[0] == '\0', "signed with no secret: rc %d",
                   (int)rc);
        return 0;
    }
    FUZZ_CHECK(rc == SB_OK, "compute: rc %d", (int)rc);
    {
        char want_sig[SB_SIGNATURE_LEN + 1];
        FUZZ_CHECK(expected_signature(secret, body, body_len, nonce, ts, want_sig), "HMAC");
        FUZZ_CHECK(strcmp(computed, want_sig) == 0, "computed %s, expected %s", computed, want_sig);
    }
    want = expected_verdict(secret, body, body_len, nonce, ts, computed, now, skew);
    got = sb_signature_verify(secret, body, body_len, nonce, ts, computed, now, skew);
    FUZZ_CHECK(got == want, "own signature: %s, expected %s", sb_sig_verdict_name(got),
               sb_sig_verdict_name(want));
    if (got != SB_SIG_OK) {
        return 0; /* the headers are missing, malformed or stale: nothing left to tamper with */
    }

    /* 3. One bit flipped, in the signature and in the body: always a mismatch. */
    for (size_t i = 0; i < size; i++) {
        pick = pick * 31 + data[i];
    }
    {
        char forged[SB_SIGNATURE_LEN + 1];
        size_t bit = pick % ((size_t)SB_SIGNATURE_LEN * 8);

        memcpy(forged, computed, sizeof(forged));
        forged[bit / 8] = (char)(forged[bit / 8] ^ (1 << (bit % 8)));
        got = sb_signature_verify(secret, body, body_len, nonce, ts, forged, now, skew);
        FUZZ_CHECK(got == SB_SIG_MISMATCH, "bit %zu of the signature flipped: %s", bit,
                   sb_sig_verdict_name(got));
    }
    if (body_len > 0) {
        char *tampered = malloc(body_len);
        size_t bit = pick % (body_len * 8);

        FUZZ_CHECK(tampered != NULL, "malloc");
        memcpy(tampered, body, body_len);
        tampered[bit / 8] = (char)(tampered[bit / 8] ^ (1 << (bit % 8)));
        got = sb_signature_verify(secret, tampered, body_len, nonce, ts, computed, now, skew);
        FUZZ_CHECK(got == SB_SIG_MISMATCH, "bit %zu of the body flipped: %s", bit,
                   sb_sig_verdict_name(got));
        free(tampered);
    }
    return 0;
}
