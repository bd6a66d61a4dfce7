/* Ids and clocks for the simulator: ULID-like message ids (26 characters of Crockford base32,
 * unique and sorted by time), random bytes, epoch milliseconds and RFC 3339 timestamps.
 * Not cryptographic: these only have to look like Sinch's and never repeat. Thread: the loop. */
#ifndef SIM_IDS_H
#define SIM_IDS_H

#include <stddef.h>
#include <stdint.h>

#define SIM_ULID_LEN 26
#define SIM_TIME_LEN 24 /* "2024-06-15T14:20:01.284Z" */

struct sim_ids {
    uint64_t rng[4];  /* xoshiro256** state */
    int64_t last_ms;  /* time part of the last ULID */
    uint64_t rand_hi; /* upper 16 of the 80 random bits of the last ULID */
    uint64_t rand_lo; /* lower 64 random bits; incremented within one millisecond */
};

/* Seeds from /dev/urandom (or the clock and pid when that fails). */
void sim_ids_init(struct sim_ids *ids);

uint64_t sim_ids_rand(struct sim_ids *ids);
void sim_ids_rand_bytes(struct sim_ids *ids, unsigned char *out, size_t len);

/* Writes a new ULID and a NUL into out[SIM_ULID_LEN + 1]. Ids of one millisecond count up, so
 * they stay unique and ordered. */
void sim_ids_ulid(struct sim_ids *ids, int64_t now_ms, char *out);

/* Milliseconds since the epoch, from CLOCK_REALTIME. */
int64_t sim_now_ms(void);

/* Writes `ms` as RFC 3339 UTC with milliseconds and a NUL into out[SIM_TIME_LEN + 1]. */
void sim_time_rfc3339(int64_t ms, char *out);

#endif
