/* Sinch webhook signatures (facts section 8): HMAC-SHA256 over the raw body, ".", the nonce,
 * ".", the timestamp, keyed with the secret's UTF-8 bytes as they are; standard base64 with
 * padding; compared in constant time; the timestamp must lie within max_skew seconds of now.
 * Pure (the time is passed in). Thread: any. */
#ifndef SB_ADAPTERS_SIGNATURE_H
#define SB_ADAPTERS_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#include "bridge/err.h"

#define SB_SIGNATURE_LEN 44 /* base64 of 32 bytes, with padding */

enum sb_sig_verdict {
    SB_SIG_OK,
    SB_SIG_MISSING,   /* a header is missing or empty */
    SB_SIG_MALFORMED, /* the timestamp is not a decimal number of seconds */
    SB_SIG_STALE,     /* the timestamp is more than max_skew seconds away from now */
    SB_SIG_MISMATCH,  /* the signature is not the body's */
};

/* Checks a callback. nonce, timestamp and signature are the header values as received (NULL
 * when absent); body is the raw body as received. */
enum sb_sig_verdict sb_signature_verify(const char *secret, const void *body, size_t body_len,
                                        const char *nonce, const char *timestamp,
                                        const char *signature, int64_t now_s, long max_skew_s);

/* Computes the signature of a callback into out (NUL-terminated). */
enum sb_err sb_signature_compute(const char *secret, const void *body, size_t body_len,
                                 const char *nonce, const char *timestamp,
                                 char out[SB_SIGNATURE_LEN + 1]) SB_MUST_CHECK;

/* The SHA-256 of a body as 64 lower-case hex characters and a NUL: the deduplication key of
 * callbacks that carry no id of their own (facts section 9). In sha256.c. */
void sb_sha256_hex(const void *body, size_t len, char out[65]);

/* "ok", "missing", "malformed", "stale", "mismatch": for logs and metrics labels. */
const char *sb_sig_verdict_name(enum sb_sig_verdict v);

#endif
