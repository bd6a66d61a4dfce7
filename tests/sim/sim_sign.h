/* The webhook signature of fact 8.2, written independently of the bridge's verifier so that a
 * bug shared by both cannot hide: base64 (standard alphabet, '=' padding) of
 * HMAC-SHA256(secret, body "." nonce "." timestamp). Pure; any thread. */
#ifndef SIM_SIGN_H
#define SIM_SIGN_H

#include <stdbool.h>
#include <stddef.h>

#define SIM_SIGNATURE_LEN 44 /* base64 of the 32 bytes of SHA-256, with padding */

/* Signs the `len` bytes of `body` with `secret` (its UTF-8 bytes, not decoded), `nonce` and
 * `timestamp` (the header values, as sent) and writes the signature and a NUL into
 * out[SIM_SIGNATURE_LEN + 1]. Returns false only when OpenSSL fails. */
bool sim_sign(const char *secret, const char *body, size_t len, const char *nonce,
              const char *timestamp, char *out);

#endif
