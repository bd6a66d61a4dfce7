/* Unit tests of the store's checkpointer (adapters/store/store_checkpoint.c) on a real file:
 * under puts that never pause the WAL is still started over (the capped pass), nothing is lost
 * on the way, and a clean close leaves no WAL behind. That no commit checkpoints by itself is in
 * test_store.c (wal_autocheckpoint is 0). */
#include "adapters/store.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bridge/log.h"
#include "check.h"
#include "store_fixture.h"

/* Puts that write about 64 MiB of WAL (a put is one 1 KiB page and its frame header): four
 * times the cap at which the checkpointer holds the store's lock for a pass. */
#define PUTS 64000

static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static void test_wal_bounded_without_pauses(void)
{
    char dir[128], wal[256];
    struct sb_store *st;
    struct sb_store_ckpt_stats stats;
    int64_t seq = 0, biggest = 0;
    int failed = 0;

    case_dir(dir, sizeof(dir), "steady");
    snprintf(wal, sizeof(wal), "%s/sinch-bridge.db-wal", dir);
    st = open_ok(dir);
    if (!st) {
        return;
    }
    for (int i = 0; i < PUTS; i++) {
        if (put_simple(st, i, &seq) != SB_OK) {
            failed++;
        }
        if (i % 500 == 0 && file_size(wal) > biggest) {
            biggest = file_size(wal);
        }
    }
    CHECK(failed == 0);
    sb_store_ckpt_stats(st, &stats);
    /* Without the capped pass the WAL only grows here: every pass has commits landing in it,
     * so none leaves the WAL copied whole, and SQLite never starts it over. */
    CHECKF(stats.restarts >= 1, "restarts %llu, passes %llu, capped %llu",
           (unsigned long long)stats.restarts, (unsigned long long)stats.passes,
           (unsigned long long)stats.capped);
    CHECKF(biggest < (int64_t)48 * 1024 * 1024, "the WAL grew to %lld bytes", (long long)biggest);
    CHECK(stats.passes >= stats.capped && stats.passes >= 1);
    CHECK(stats.failures == 0);
    close_store(st);

    /* Every put is in the database, and a clean close took the WAL along. */
    CHECKF(file_size(wal) == -1 && errno == ENOENT, "WAL left: %lld bytes",
           (long long)file_size(wal));
    CHECK(raw_int(dir, "SELECT count(*) FROM commands") == PUTS);
    CHECK(raw_int(dir, "SELECT max(seq) FROM commands") == seq);
}

/* Reopened right after a close, the checkpointer starts again: passes come, the WAL restarts. */
static void test_reopen(void)
{
    char dir[128];
    struct sb_store_ckpt_stats stats;
    int64_t seq;

    case_dir(dir, sizeof(dir), "reopen");
    for (int round = 0; round < 2; round++) {
        struct sb_store *st = open_ok(dir);
        if (!st) {
            return;
        }
        for (int i = 0; i < PUTS / 4; i++) {
            CHECK(put_simple(st, round * PUTS + i, &seq) == SB_OK);
        }
        sb_store_ckpt_stats(st, &stats);
        CHECKF(stats.passes >= 1, "round %d: no pass", round);
        close_store(st);
    }
    CHECK(raw_int(dir, "SELECT count(*) FROM commands") == PUTS / 2);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/test_store_checkpoint.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    sb_log_setup(SB_LOG_WARN, SB_LOG_TEXT);
    test_wal_bounded_without_pauses();
    test_reopen();
    rm_rf(root);
    return check_report();
}
