/* OAuth2 access tokens (fact 2.1): mints JWT-shaped tokens whose middle segment carries exp, iat
 * and jti, remembers every token issued in a hash set with its expiry, and can expire them all
 * at once for tests of the refresh-and-retry path. Thread: the loop. */
#ifndef SIM_TOKEN_H
#define SIM_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_ids.h"

#define SIM_TOKEN_MAX 256 /* longest token we mint, with its NUL */

struct sim_tokens;

enum sim_token_state {
    SIM_TOKEN_VALID,
    SIM_TOKEN_EXPIRED, /* ours, but past exp or expired by POST /_sim/tokens/expire */
    SIM_TOKEN_UNKNOWN, /* never issued by us */
};

/* Returns a new set, or NULL when out of memory; free with sim_tokens_free(). */
struct sim_tokens *sim_tokens_new(void);
void sim_tokens_free(struct sim_tokens *t); /* accepts NULL */

/* Mints a token valid for `ttl_s` seconds from `now_s`, remembers it and writes it with a NUL
 * into out[SIM_TOKEN_MAX]. Returns false when out of memory. */
bool sim_tokens_issue(struct sim_tokens *t, struct sim_ids *ids, int64_t now_s, long ttl_s,
                      char *out);

/* Looks up the `len` bytes of `token`. */
enum sim_token_state sim_tokens_check(const struct sim_tokens *t, const char *token, size_t len,
                                      int64_t now_s);

/* Every token issued so far is expired from now on; later ones are not affected. */
void sim_tokens_expire_all(struct sim_tokens *t);

#endif
