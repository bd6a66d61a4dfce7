/* Token bucket and backoff with a fake clock: the time is a number we move by hand. */
#include "bridge/ratelimit.h"

#include "check.h"

static void test_bucket_paces(void)
{
    struct sb_bucket b;
    int64_t now = 1000000;
    int taken = 0;

    sb_bucket_init(&b, 20, now);
    /* One second of burst, then 20 a second. */
    while (sb_bucket_take(&b, now) == 0) {
        taken++;
    }
    CHECKF(taken == 20, "burst %d", taken);
    for (int ms = 0; ms < 10000; ms++) {
        now++;
        while (sb_bucket_take(&b, now) == 0) {
            taken++;
        }
    }
    CHECKF(taken >= 219 && taken <= 221, "10 s at 20/s after a burst of 20: %d", taken);
}

static void test_bucket_wait_is_exact(void)
{
    struct sb_bucket b;
    int64_t now = 0;

    sb_bucket_init(&b, 4, now);
    for (int i = 0; i < 4; i++) {
        CHECK(sb_bucket_take(&b, now) == 0);
    }
    int64_t wait = sb_bucket_take(&b, now);
    CHECKF(wait >= 250 && wait <= 251, "wait %lld", (long long)wait);
    CHECK(sb_bucket_take(&b, now + wait) == 0);
}

static void test_bucket_unlimited(void)
{
    struct sb_bucket b;
    sb_bucket_init(&b, 0, 0);
    for (int i = 0; i < 100000; i++) {
        if (sb_bucket_take(&b, 0) != 0) {
            CHECK(!"unlimited bucket refused");
            return;
        }
    }
    CHECK(1);
}

static void test_bucket_429(void)
{
    struct sb_bucket b;
    int64_t now = 0;

    sb_bucket_init(&b, 20, now);
    sb_bucket_slow(&b, now, 2000);
    CHECK(b.cur_rate == 10);
    CHECK(sb_bucket_take(&b, now) == 2000); /* Retry-After holds every send */
    CHECK(sb_bucket_take(&b, now + 1999) == 1);
    CHECK(sb_bucket_take(&b, now + 2000) == 0);
    for (int i = 0; i < 20; i++) {
        sb_bucket_slow(&b, now, 0);
    }
    CHECK(b.cur_rate == SB_BUCKET_MIN_RATE); /* a storm never stops sending entirely */
    for (int i = 0; i < 100; i++) {
        sb_bucket_recover(&b);
    }
    CHECK(b.cur_rate == 20); /* recovers, never past the configured rate */

    sb_bucket_init(&b, 0, now); /* unlimited still honours Retry-After */
    sb_bucket_slow(&b, now, 500);
    CHECK(sb_bucket_take(&b, now) == 500);
    CHECK(sb_bucket_take(&b, now + 500) == 0);
}

static void test_backoff(void)
{
    const struct {
        unsigned attempt;
        uint32_t rnd;
        int64_t want;
    } rows[] = {
        {0, 0, 0},
        {0, 0x80000000u, 250},     /* half of base 500 */
        {1, 0x80000000u, 500},     /* half of 1000 */
        {3, 0xffffffffu, 3999},    /* just under 4000 */
        {10, 0x80000000u, 15000},  /* capped at 30000 */
        {200, 0xffffffffu, 29999}, /* a huge attempt does not overflow */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t got = sb_backoff_ms(rows[i].attempt, 500, 30000, rows[i].rnd);
        CHECKF(got == rows[i].want, "row %zu: %lld != %lld", i, (long long)got,
               (long long)rows[i].want);
    }
}

/* Sends taken over `ms` milliseconds, asking every millisecond. */
static int take_for(struct sb_bucket *b, int64_t *now, int ms)
{
    int taken = 0;
    for (int i = 0; i < ms; i++) {
        (*now)++;
        while (sb_bucket_take(b, *now) == 0 && taken < 1000000) {
            taken++;
        }
    }
    return taken;
}

/* SIGHUP changes BRIDGE_RATE_LIMIT on a running bucket. */
static void test_bucket_set_rate(void)
{
    struct sb_bucket b;
    int64_t now = 0;
    int n;

    /* Unlimited to 5/s: paced from then on (it once stayed unlimited). */
    sb_bucket_init(&b, 0, now);
    sb_bucket_set_rate(&b, 5);
    n = take_for(&b, &now, 10000);
    CHECKF(n >= 49 && n <= 56, "10 s at 5/s: %d", n);

    /* 5/s at full speed to 50/s: the new rate at once. */
    sb_bucket_set_rate(&b, 50);
    n = take_for(&b, &now, 10000);
    CHECKF(n >= 499 && n <= 551, "10 s at 50/s: %d", n);

    /* Slowed by a 429 to 25/s, then limited to 100: stays at 25 and wins the rest back. */
    sb_bucket_slow(&b, now, 0);
    sb_bucket_set_rate(&b, 100);
    CHECK(b.cur_rate == 25 && b.rate == 100);
    /* Limited below the slowed pace: the new limit caps it. */
    sb_bucket_set_rate(&b, 10);
    CHECK(b.cur_rate == 10);
    /* Back to unlimited. */
    sb_bucket_set_rate(&b, 0);
    CHECK(take_for(&b, &now, 1) == 1000000);
}

int main(void)
{
    test_bucket_paces();
    test_bucket_wait_is_exact();
    test_bucket_unlimited();
    test_bucket_429();
    test_bucket_set_rate();
    test_backoff();
    return check_report();
}
