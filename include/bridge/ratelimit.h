/* Pacing and retry timing, pure: the caller passes the time, so tests need no sleeping.
 * The token bucket paces sends to Sinch (BRIDGE_RATE_LIMIT, one second of sends as burst); a
 * 429 halves its rate and pauses it (Retry-After), successes win the rate back gradually.
 * Thread: whoever owns the struct (the loop). */
#ifndef SB_BRIDGE_RATELIMIT_H
#define SB_BRIDGE_RATELIMIT_H

#include <stdint.h>

struct sb_bucket {
    double rate;          /* configured sends per second; 0 means unlimited */
    double cur_rate;      /* current rate: lowered by 429s, recovers towards rate */
    double tokens;        /* available sends, at most one second's worth */
    int64_t last_ms;      /* when tokens were last refilled */
    int64_t paused_until; /* no sends before this time (a 429's Retry-After) */
};

#define SB_BUCKET_MIN_RATE 0.5 /* a storm of 429s slows sending to one per two seconds, no less */

void sb_bucket_init(struct sb_bucket *b, double rate, int64_t now_ms);
/* Takes one send. Returns 0 when taken, else the milliseconds to wait before asking again. */
int64_t sb_bucket_take(struct sb_bucket *b, int64_t now_ms);
/* Sinch answered 429: halve the current rate and pause for pause_ms (its Retry-After, or 0). */
void sb_bucket_slow(struct sb_bucket *b, int64_t now_ms, int64_t pause_ms);
/* Sinch accepted a send: win back 5% of the configured rate. */
void sb_bucket_recover(struct sb_bucket *b);
/* Changes the configured rate (reload), keeping the state otherwise. */
void sb_bucket_set_rate(struct sb_bucket *b, double rate);

/* Full-jitter exponential backoff: a delay in [0, min(cap, base * 2^attempt)], chosen by `rnd`
 * (uniform over 32 bits). attempt counts from 0. */
int64_t sb_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, uint32_t rnd);

#endif
