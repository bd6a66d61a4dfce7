/* Ids and clocks: a xoshiro256** generator seeded once, ULIDs in the layout of the ULID spec
 * (48 bits of milliseconds, 80 random bits, Crockford base32) that Sinch's message ids follow,
 * and the two clocks the answers need. */
#include "sim_ids.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* splitmix64 spreads a weak seed over the four words of xoshiro's state. */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void sim_ids_init(struct sim_ids *ids)
{
    uint64_t seed = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&seed, sizeof(seed), 1, f) != 1) {
        seed = (uint64_t)sim_now_ms() ^ ((uint64_t)getpid() << 32);
    }
    if (f) {
        fclose(f);
    }
    memset(ids, 0, sizeof(*ids));
    for (int i = 0; i < 4; i++) {
        ids->rng[i] = splitmix(&seed);
    }
}

uint64_t sim_ids_rand(struct sim_ids *ids)
{
    uint64_t *s = ids->rng;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void sim_ids_rand_bytes(struct sim_ids *ids, unsigned char *out, size_t len)
{
    while (len > 0) {
        uint64_t r = sim_ids_rand(ids);
        size_t n = len < sizeof(r) ? len : sizeof(r);
        memcpy(out, &r, n);
        out += n;
        len -= n;
    }
}

void sim_ids_ulid(struct sim_ids *ids, int64_t now_ms, char *out)
{
    if (now_ms > ids->last_ms) {
        ids->last_ms = now_ms;
        ids->rand_hi = sim_ids_rand(ids) & 0xFFFF;
        ids->rand_lo = sim_ids_rand(ids);
    } else if (++ids->rand_lo == 0) {
        /* Same millisecond (or the clock stepped back): count up, carrying into the top bits. */
        ids->rand_hi = (ids->rand_hi + 1) & 0xFFFF;
    }
    uint64_t t = (uint64_t)ids->last_ms;
    for (int i = 9; i >= 0; i--) {
        out[i] = crockford[t & 31];
        t >>= 5;
    }
    /* 80 random bits as 16 groups of 5, most significant first: bits 79..64 are in rand_hi. */
    for (int g = 0; g < 16; g++) {
        int low = 75 - 5 * g; /* lowest bit of this group */
        uint64_t v;
        if (low >= 64) {
            v = ids->rand_hi >> (low - 64);
        } else if (low + 4 >= 64) {
            v = (ids->rand_hi << (64 - low)) | (ids->rand_lo >> low);
        } else {
            v = ids->rand_lo >> low;
        }
        out[10 + g] = crockford[v & 31];
    }
    out[SIM_ULID_LEN] = '\0';
}

int64_t sim_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sim_time_rfc3339(int64_t ms, char *out)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, SIM_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, SIM_TIME_LEN + 1 - n, ".%03dZ", (int)(ms % 1000));
}
