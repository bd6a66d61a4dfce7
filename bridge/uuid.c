/* Version 4 UUIDs from the kernel's random source (getrandom(2): no file to open, never blocks
 * once the system is up). */
/* NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c): glibc's feature-test macro */
#define _DEFAULT_SOURCE /* getrandom */
#include "bridge/uuid.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

void sb_uuid_v4(char out[SB_UUID_LEN + 1])
{
    uint8_t b[16];
    size_t got = 0;

    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n <= 0) {
            /* Cannot happen on Linux >= 3.17 after boot; fall back to something unique. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            for (size_t i = got; i < sizeof(b); i++) {
                b[i] = (uint8_t)((uint64_t)ts.tv_nsec >> ((i % 8) * 8)) ^ (uint8_t)i;
            }
            break;
        }
        got += (size_t)n;
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, SB_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}
