/* The token set: open addressing with linear probing over FNV-1a hashes, grown at half load,
 * never shrunk (a test or a benchmark mints a handful of tokens). Forced expiry is a serial
 * cut-off, so expiring every token costs nothing. */
#include "sim_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#define INITIAL_SLOTS 64
#define SIG_BYTES     32 /* the signature segment: random bytes, nobody checks it */

/* base64url of {"alg":"RS256","typ":"JWT"} */
#define JWT_HEADER "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"

struct slot {
    char *token; /* owned; NULL when the slot is free */
    uint64_t hash;
    int64_t exp_s;   /* the exp claim */
    uint64_t serial; /* order of issue, starting at 1 */
};

struct sim_tokens {
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t used;
    uint64_t next_serial;
    uint64_t expired_below; /* tokens with a smaller serial were force-expired */
};

static uint64_t fnv1a(const char *s, size_t len)
{
    uint64_t h = 0xCBF29CE484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001B3ULL;
    }
    return h;
}

struct sim_tokens *sim_tokens_new(void)
{
    struct sim_tokens *t = calloc(1, sizeof(*t));
    if (!t) {
        return NULL;
    }
    t->slots = calloc(INITIAL_SLOTS, sizeof(*t->slots));
    if (!t->slots) {
        free(t);
        return NULL;
    }
    t->cap = INITIAL_SLOTS;
    t->next_serial = 1;
    t->expired_below = 1;
    return t;
}

void sim_tokens_free(struct sim_tokens *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->cap; i++) {
        free(t->slots[i].token);
    }
    free(t->slots);
    free(t);
}

static struct slot *find_slot(struct slot *slots, size_t cap, uint64_t hash, const char *token,
                              size_t len)
{
    for (size_t i = hash & (cap - 1);; i = (i + 1) & (cap - 1)) {
        struct slot *s = &slots[i];
        if (!s->token ||
            (s->hash == hash && strlen(s->token) == len && memcmp(s->token, token, len) == 0)) {
            return s;
        }
    }
}

static bool grow(struct sim_tokens *t)
{
    size_t cap = t->cap * 2;
    struct slot *slots = calloc(cap, sizeof(*slots));
    if (!slots) {
        return false;
    }
    for (size_t i = 0; i < t->cap; i++) {
        struct slot *old = &t->slots[i];
        if (old->token) {
            *find_slot(slots, cap, old->hash, old->token, strlen(old->token)) = *old;
        }
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return true;
}

/* base64url without padding, as JWTs are written. */
static void b64url(const void *in, size_t len, char *out, size_t out_len)
{
    if (lws_b64_encode_string_url(in, (int)len, out, (int)out_len) < 0) {
        out[0] = '\0';
        return;
    }
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '=') {
        out[--n] = '\0';
    }
}

bool sim_tokens_issue(struct sim_tokens *t, struct sim_ids *ids, int64_t now_s, long ttl_s,
                      char *out)
{
    char claims[96], jti[SIM_ULID_LEN + 1], claims64[128], sig64[48];
    unsigned char sig[SIG_BYTES];

    if ((t->used + 1) * 2 > t->cap && !grow(t)) {
        return false;
    }
    sim_ids_ulid(ids, now_s * 1000, jti);
    int n = snprintf(claims, sizeof(claims), "{\"exp\":%lld,\"iat\":%lld,\"jti\":\"%s\"}",
                     (long long)now_s + ttl_s, (long long)now_s, jti);
    if (n < 0 || (size_t)n >= sizeof(claims)) {
        return false; /* cannot happen with 64-bit times, but never read past claims */
    }
    b64url(claims, (size_t)n, claims64, sizeof(claims64));
    sim_ids_rand_bytes(ids, sig, sizeof(sig));
    b64url(sig, sizeof(sig), sig64, sizeof(sig64));
    snprintf(out, SIM_TOKEN_MAX, "%s.%s.%s", JWT_HEADER, claims64, sig64);

    size_t len = strlen(out);
    uint64_t hash = fnv1a(out, len);
    struct slot *s = find_slot(t->slots, t->cap, hash, out, len);
    if (!s->token) {
        s->token = strdup(out);
        if (!s->token) {
            return false;
        }
        t->used++;
    }
    s->hash = hash;
    s->exp_s = now_s + ttl_s;
    s->serial = t->next_serial++;
    return true;
}

enum sim_token_state sim_tokens_check(const struct sim_tokens *t, const char *token, size_t len,
                                      int64_t now_s)
{
    const struct slot *s = find_slot(t->slots, t->cap, fnv1a(token, len), token, len);
    if (!s->token) {
        return SIM_TOKEN_UNKNOWN;
    }
    if (s->serial < t->expired_below || now_s >= s->exp_s) {
        return SIM_TOKEN_EXPIRED;
    }
    return SIM_TOKEN_VALID;
}

void sim_tokens_expire_all(struct sim_tokens *t)
{
    t->expired_below = t->next_serial;
}
