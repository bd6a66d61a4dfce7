/* Token bucket and full-jitter backoff (facts 5.3: halve on 429, recover after successes;
 * AWS's "full jitter" spreads retries of many commands that failed together). */
#include "bridge/ratelimit.h"

void sb_bucket_init(struct sb_bucket *b, double rate, int64_t now_ms)
{
    b->rate = rate;
    b->cur_rate = rate;
    b->tokens = rate > 1.0 ? rate : 1.0;
    b->last_ms = now_ms;
    b->paused_until = 0;
}

static void refill(struct sb_bucket *b, int64_t now_ms)
{
    double capacity = b->cur_rate > 1.0 ? b->cur_rate : 1.0;
    if (now_ms > b->last_ms) {
        b->tokens += b->cur_rate * (double)(now_ms - b->last_ms) / 1000.0;
        if (b->tokens > capacity) {
            b->tokens = capacity;
        }
        b->last_ms = now_ms;
    }
}

int64_t sb_bucket_take(struct sb_bucket *b, int64_t now_ms)
{
    if (now_ms < b->paused_until) {
        return b->paused_until - now_ms;
    }
    if (b->rate <= 0) {
        return 0;
    }
    refill(b, now_ms);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    /* Round up, so that asking again after the wait finds a whole token. */
    int64_t wait = (int64_t)((1.0 - b->tokens) * 1000.0 / b->cur_rate) + 1;
    return wait;
}

void sb_bucket_slow(struct sb_bucket *b, int64_t now_ms, int64_t pause_ms)
{
    if (b->rate > 0) {
        refill(b, now_ms);
        b->cur_rate /= 2.0;
        if (b->cur_rate < SB_BUCKET_MIN_RATE) {
            b->cur_rate = SB_BUCKET_MIN_RATE;
        }
        if (b->tokens > b->cur_rate) {
            b->tokens = b->cur_rate;
        }
    }
    if (pause_ms > 0 && now_ms + pause_ms > b->paused_until) {
        b->paused_until = now_ms + pause_ms;
    }
}

void sb_bucket_recover(struct sb_bucket *b)
{
    if (b->cur_rate < b->rate) {
        b->cur_rate += b->rate * 0.05;
        if (b->cur_rate > b->rate) {
            b->cur_rate = b->rate;
        }
    }
}

void sb_bucket_set_rate(struct sb_bucket *b, double rate)
{
    /* A bucket slowed by 429s keeps its slower pace (capped by the new rate) and wins the rest
     * back as before; one running at full speed, or unlimited until now, takes the new rate. */
    if (rate <= 0 || b->rate <= 0 || b->cur_rate >= b->rate || b->cur_rate > rate) {
        b->cur_rate = rate;
    }
    b->rate = rate;
}

int64_t sb_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms, uint32_t rnd)
{
    int64_t ceiling = base_ms;
    for (unsigned i = 0; i < attempt && ceiling < cap_ms; i++) {
        ceiling *= 2;
    }
    if (ceiling > cap_ms) {
        ceiling = cap_ms;
    }
    return (int64_t)((double)ceiling * ((double)rnd / 4294967296.0));
}
