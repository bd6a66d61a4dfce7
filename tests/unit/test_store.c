/* Unit tests of the SQLite store, on real files in a mkdtemp directory: put and load, staged
 * writes, durability across a crash (a child killed with SIGKILL right after put returns),
 * dedupe, prune, the queries, failures (open, flush, put, a full disk) and concurrent puts. */
#include "adapters/store.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bridge/log.h"
#include "check.h"
#include "store_fixture.h"

/* ---- load collector ---- */

#define MAX_ROWS 16

struct row_copy {
    int64_t seq;
    int64_t received_ms;
    char topic[64];
    char payload[64];
    size_t payload_len;
    bool has_response_topic;
    char response_topic[64];
    bool has_correlation;
    char correlation[32];
    size_t correlation_len;
    char gen_id[64];
    enum sb_store_state state;
    int attempts;
    bool has_outcome;
    char outcome_topic[64];
    char outcome[128];
};

struct rows {
    struct row_copy r[MAX_ROWS];
    size_t n;
    size_t total;
    int64_t through; /* what the load said it looked at */
};

static void collect(void *arg, const struct sb_store_command *row)
{
    struct rows *rows = arg;
    struct row_copy *c;

    rows->total++;
    if (rows->n == MAX_ROWS) {
        return;
    }
    c = &rows->r[rows->n++];
    memset(c, 0, sizeof(*c));
    c->seq = row->seq;
    c->received_ms = row->received_ms;
    snprintf(c->topic, sizeof(c->topic), "%s", row->topic);
    c->payload_len = row->payload_len;
    if (row->payload_len <= sizeof(c->payload)) {
        memcpy(c->payload, row->payload, row->payload_len);
    }
    c->has_response_topic = row->response_topic != NULL;
    if (row->response_topic) {
        snprintf(c->response_topic, sizeof(c->response_topic), "%s", row->response_topic);
    }
    c->has_correlation = row->correlation != NULL;
    c->correlation_len = row->correlation_len;
    if (row->correlation && row->correlation_len <= sizeof(c->correlation)) {
        memcpy(c->correlation, row->correlation, row->correlation_len);
    }
    snprintf(c->gen_id, sizeof(c->gen_id), "%s", row->gen_id);
    c->state = row->state;
    c->attempts = row->attempts;
    c->has_outcome = row->outcome_topic != NULL || row->outcome != NULL;
    if (row->outcome_topic) {
        snprintf(c->outcome_topic, sizeof(c->outcome_topic), "%s", row->outcome_topic);
    }
    if (row->outcome) {
        snprintf(c->outcome, sizeof(c->outcome), "%s", row->outcome);
    }
}

static struct rows *load_all(struct sb_store *st, int64_t after, size_t max)
{
    static struct rows rows;

    memset(&rows, 0, sizeof(rows));
    CHECK(sb_store_load_unfinished(st, after, max, collect, &rows, &rows.through) == SB_OK);
    return &rows;
}

/* ---- cases ---- */

static void test_open_errors(void)
{
    char dir[128];
    char path[256];
    char why[256];
    struct sb_store *st = (struct sb_store *)(uintptr_t)1; /* must be reset to NULL */
    FILE *f;

    CHECK(sb_store_open(NULL, &st, why, sizeof(why)) == SB_E_INVAL);
    CHECK(st == NULL);

    /* A path under a regular file cannot be created (even by root). */
    case_dir(dir, sizeof(dir), "plainfile");
    f = fopen(dir, "w");
    CHECK(f != NULL);
    if (f) {
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/sub", dir);
    why[0] = '\0';
    CHECK(sb_store_open(path, &st, why, sizeof(why)) != SB_OK);
    CHECK(st == NULL);
    CHECKF(strstr(why, path) != NULL, "why: %s", why);
    CHECK(sb_store_open(dir, &st, why, sizeof(why)) != SB_OK); /* the dir is a file */
    CHECKF(strstr(why, "not a directory") != NULL, "why: %s", why);
    CHECK(sb_store_open(path, &st, NULL, 0) != SB_OK); /* no why buffer: still fails cleanly */

    /* A file that is not a database. */
    case_dir(dir, sizeof(dir), "garbage");
    CHECK(mkdir(dir, 0700) == 0);
    db_path(path, sizeof(path), dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        for (int i = 0; i < 1000; i++) {
            fputs("this is not an SQLite file ", f);
        }
        fclose(f);
    }
    CHECK(sb_store_open(dir, &st, why, sizeof(why)) == SB_E_STORE);
    CHECKF(strstr(why, "not a database") != NULL && strstr(why, path) != NULL, "why: %s", why);

    /* A schema newer than this build. */
    case_dir(dir, sizeof(dir), "newer");
    st = open_ok(dir);
    close_store(st);
    CHECK(raw_exec(dir, "PRAGMA user_version=99") == SQLITE_OK);
    CHECK(sb_store_open(dir, &st, why, sizeof(why)) == SB_E_STORE);
    CHECKF(strstr(why, "schema version 99") != NULL, "why: %s", why);
}

static void test_open_creates(void)
{
    char dir[128];
    char path[256];
    char buf[64];
    struct stat sb;
    struct sb_store *st;

    case_dir(dir, sizeof(dir), "a/b/c");
    st = open_ok(dir);
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700);
    case_dir(path, sizeof(path), "a");
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0700);
    CHECK_STR(raw_text(dir, "PRAGMA journal_mode", buf, sizeof(buf)), "wal");
    CHECK(raw_int(dir, "PRAGMA user_version") == 5);
    CHECK(raw_int(dir, "SELECT count(*) FROM sqlite_master WHERE name = 'dedupe'") == 1);
    close_store(st);
    st = open_ok(dir); /* again, on the existing file: no migration */
    CHECK(raw_int(dir, "PRAGMA user_version") == 5);
    CHECK(raw_int(dir, "PRAGMA page_size") == 1024);
    /* SQLite's own checkpoints, inside a commit, are off: the checkpointer's thread does them
     * (test_store_checkpoint.c). NORMAL locking, so that it can have a connection of its own. */
    CHECK(raw_int(dir, "PRAGMA wal_autocheckpoint") == 0);
    CHECK_STR(raw_text(dir, "PRAGMA locking_mode", buf, sizeof(buf)), "normal");
    {
        /* The directory is this store's alone: a second one (another bridge on the same
         * directory) is refused at once, by the lock file, with a reason that says so. */
        struct sb_store *second = NULL;
        char why[256] = "";
        CHECK(sb_store_open(dir, &second, why, sizeof(why)) == SB_E_STORE && second == NULL);
        CHECKF(strstr(why, "in use by another process") != NULL, "why: %s", why);
    }
    close_store(st);
    close_store(NULL);
}

static void test_put_load(void)
{
    static const char bin[] = {'{', 0, 'x', 0, 0, '\xff', '}'};
    static const char corr[] = {0, 1, 2, 0, 3};
    char dir[128];
    struct sb_store *st;
    struct sb_store_command c = {0};
    int64_t seq[4] = {0};
    struct rows *rows;

    case_dir(dir, sizeof(dir), "putload");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    c.received_ms = 1700000000123;
    c.topic = "sinch/send/46701234567";
    c.payload = bin;
    c.payload_len = sizeof(bin);
    c.response_topic = "reply/here";
    c.correlation = corr;
    c.correlation_len = sizeof(corr);
    c.gen_id = "0b6f6c1e-2d4c-4c36-8a36-3f1a5b7f8e01";
    CHECK(sb_store_put_command(st, &c, &seq[0]) == SB_OK);
    c.response_topic = NULL;
    c.correlation = NULL;
    c.correlation_len = 0;
    c.payload = "hello";
    c.payload_len = 5;
    c.gen_id = "g2";
    CHECK(sb_store_put_command(st, &c, &seq[1]) == SB_OK);
    c.payload = NULL; /* empty payload */
    c.payload_len = 0;
    c.gen_id = "g3";
    CHECK(sb_store_put_command(st, &c, &seq[2]) == SB_OK);
    CHECK(seq[0] > 0 && seq[1] > seq[0] && seq[2] > seq[1]);

    /* Bad input is refused before the database is touched. */
    c.topic = NULL;
    CHECK(sb_store_put_command(st, &c, &seq[3]) == SB_E_INVAL);
    c.topic = "t";
    c.gen_id = NULL;
    CHECK(sb_store_put_command(st, &c, &seq[3]) == SB_E_INVAL);
    c.gen_id = "g";
    c.payload_len = 3; /* with a NULL payload */
    CHECK(sb_store_put_command(st, &c, &seq[3]) == SB_E_INVAL);

    rows = load_all(st, 0, 100);
    CHECK(rows->total == 3);
    if (rows->n == 3) {
        struct row_copy *r = &rows->r[0];
        CHECK(r->seq == seq[0]);
        CHECK(r->received_ms == 1700000000123);
        CHECK_STR(r->topic, "sinch/send/46701234567");
        CHECK(r->payload_len == sizeof(bin) && memcmp(r->payload, bin, sizeof(bin)) == 0);
        CHECK(r->has_response_topic);
        CHECK_STR(r->response_topic, "reply/here");
        CHECK(r->has_correlation && r->correlation_len == sizeof(corr) &&
              memcmp(r->correlation, corr, sizeof(corr)) == 0);
        CHECK_STR(r->gen_id, "0b6f6c1e-2d4c-4c36-8a36-3f1a5b7f8e01");
        CHECK(r->state == SB_STORE_PENDING && r->attempts == 0 && !r->has_outcome);
        r = &rows->r[1];
        CHECK(r->seq == seq[1] && !r->has_response_topic && !r->has_correlation);
        CHECK(r->payload_len == 5 && memcmp(r->payload, "hello", 5) == 0);
        CHECK_STR(r->gen_id, "g2");
        r = &rows->r[2];
        CHECK(r->seq == seq[2] && r->payload_len == 0);
    }
    CHECK(rows->through == seq[2]);
    rows = load_all(st, seq[0], 100);
    CHECK(rows->total == 2 && rows->r[0].seq == seq[1]);
    rows = load_all(st, 0, 1);
    CHECK(rows->total == 1 && rows->r[0].seq == seq[0] && rows->through == seq[0]);
    rows = load_all(st, seq[2], 100);
    CHECK(rows->total == 0 && rows->through == seq[2]);
    /* A short load looked past finished rows to the end: *through says so, and the next load
     * starts there. A full one stops at its last row. */
    sb_store_stage_outcome(st, seq[1], NULL, NULL, NULL, NULL, NULL, 1, "t", "o");
    sb_store_stage_done(st, seq[1], 5000);
    sb_store_stage_outcome(st, seq[2], NULL, NULL, NULL, NULL, NULL, 1, "t", "o");
    sb_store_stage_done(st, seq[2], 5000);
    CHECK(sb_store_flush(st) == SB_OK);
    rows = load_all(st, 0, 100);
    CHECK(rows->total == 1 && rows->r[0].seq == seq[0] && rows->through == seq[2]);
    rows = load_all(st, 0, 1);
    CHECK(rows->total == 1 && rows->through == seq[0]);
    {
        int64_t through = -1;
        CHECK(sb_store_load_unfinished(st, 0, 0, collect, rows, &through) == SB_OK);
        CHECK(through == 0); /* max 0: nothing looked at */
        CHECK(sb_store_load_unfinished(st, 0, 10, NULL, NULL, &through) == SB_E_INVAL);
        CHECK(sb_store_load_unfinished(st, 0, 10, collect, rows, NULL) == SB_E_INVAL);
    }
    close_store(st);
}

/* A callback that calls the store: the error-checking lock refuses instead of deadlocking. */
static void reenter(void *arg, const struct sb_store_command *row)
{
    struct sb_store *st = *(struct sb_store **)arg;
    int64_t depth = 0;

    CHECK(sb_store_depth(st, &depth) == SB_E_BUG);
    sb_store_stage_attempt(st, row->seq, "from-callback", NULL, 9, 0); /* staging is fine */
}

static void test_staged(void)
{
    char dir[128];
    char buf[128];
    struct sb_store *st;
    int64_t seq[4];
    int64_t depth = -1;
    struct rows *rows;

    case_dir(dir, sizeof(dir), "staged");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    for (int i = 0; i < 4; i++) {
        CHECK(put_simple(st, i, &seq[i]) == SB_OK);
    }
    CHECK(sb_store_depth(st, &depth) == SB_OK && depth == 4);

    /* seq0: two attempts, still pending. The first handed_ms stays; 0 keeps it too. */
    sb_store_stage_attempt(st, seq[0], "cmd-0", "+46701234567", 1, 5000);
    sb_store_stage_attempt(st, seq[0], NULL, NULL, 2, 6000);
    sb_store_stage_attempt(st, seq[0], NULL, NULL, 3, 0);
    /* seq1: sent, outcome not yet published. */
    sb_store_stage_attempt(st, seq[1], "cmd-1", "+46701234567", 1, 5100);
    sb_store_stage_outcome(st, seq[1], "cmd-1", "+46701234567", "WHATSAPP", "01HMSG1", "sent", 1,
                           "sinch/sent", "{\"id\":\"cmd-1\"}");
    /* seq2: refused, outcome published: DONE. */
    sb_store_stage_outcome(st, seq[2], NULL, NULL, NULL, NULL, "invalid_command", 0, "sinch/error",
                           "{\"id\":null}");
    sb_store_stage_done(st, seq[2], 9000);
    /* seq3: sent and done; history keeps ids, the outcome payload goes. */
    sb_store_stage_attempt(st, seq[3], "cmd-3", "+46709999999", 1, 5300);
    sb_store_stage_outcome(st, seq[3], "cmd-3", NULL, "SMS", "01HMSG3", "sent", 1, "sinch/sent",
                           "{\"id\":\"cmd-3\"}");
    sb_store_stage_done(st, seq[3], 9100);
    CHECK(sb_store_staged(st) == 10);
    CHECK(raw_int(dir, "SELECT attempts FROM commands ORDER BY seq LIMIT 1") == 0); /* staged */
    CHECK(sb_store_flush(st) == SB_OK);
    CHECK(sb_store_staged(st) == 0);
    CHECK(sb_store_flush(st) == SB_OK); /* nothing staged */

    rows = load_all(st, 0, 100);
    CHECK(rows->total == 2);
    if (rows->n == 2) {
        CHECK(rows->r[0].seq == seq[0] && rows->r[0].state == SB_STORE_PENDING);
        CHECK(rows->r[0].attempts == 3 && !rows->r[0].has_outcome);
        CHECK(rows->r[1].seq == seq[1] && rows->r[1].state == SB_STORE_OUTCOME);
        CHECK(rows->r[1].attempts == 1);
        CHECK_STR(rows->r[1].outcome_topic, "sinch/sent");
        CHECK_STR(rows->r[1].outcome, "{\"id\":\"cmd-1\"}");
    }
    CHECK(sb_store_depth(st, &depth) == SB_OK && depth == 2);
    CHECK(raw_int(dir, "SELECT handed_ms FROM commands ORDER BY seq LIMIT 1") == 5000);
    CHECK_STR(raw_text(dir, "SELECT cmd_id FROM commands ORDER BY seq LIMIT 1", buf, sizeof(buf)),
              "cmd-0");
    CHECK(raw_int(dir, "SELECT count(*) FROM commands WHERE state = 2 AND outcome IS NULL") == 2);
    CHECK(raw_int(dir, "SELECT finished_ms FROM commands WHERE cmd_id = 'cmd-3'") == 9100);
    CHECK_STR(
        raw_text(dir, "SELECT recipient FROM commands WHERE cmd_id = 'cmd-3'", buf, sizeof(buf)),
        "+46709999999"); /* a NULL in stage_outcome kept the attempt's recipient */
    CHECK_STR(raw_text(dir,
                       "SELECT channel || ' ' || message_id || ' ' || status || ' ' ||"
                       " attempts || ' ' || handed_ms FROM commands WHERE cmd_id = 'cmd-3'",
                       buf, sizeof(buf)),
              "SMS 01HMSG3 sent 1 5300");
    CHECK_STR(
        raw_text(dir, "SELECT status FROM commands WHERE finished_ms = 9000", buf, sizeof(buf)),
        "invalid_command");

    /* Re-entering the store from a load callback fails instead of deadlocking. */
    {
        struct sb_store *arg = st;
        int64_t through;
        CHECK(sb_store_load_unfinished(st, 0, 1, reenter, &arg, &through) == SB_OK);
        CHECK(sb_store_staged(st) == 1);
        CHECK(sb_store_flush(st) == SB_OK);
        CHECK(raw_int(dir, "SELECT attempts FROM commands ORDER BY seq LIMIT 1") == 9);
    }

    /* The depth is a counter: a row finished twice counts once, a failed flush not at all. */
    sb_store_stage_done(st, seq[2], 9600); /* finished above already */
    CHECK(sb_store_flush(st) == SB_OK);
    CHECK(sb_store_depth(st, &depth) == SB_OK && depth == 2);
    CHECK(raw_exec(dir, "CREATE TRIGGER t BEFORE UPDATE ON commands BEGIN"
                        " SELECT RAISE(ABORT, 'injected'); END") == SQLITE_OK);
    sb_store_stage_done(st, seq[1], 9500);
    CHECK(sb_store_flush(st) == SB_E_STORE);
    CHECK(sb_store_depth(st, &depth) == SB_OK && depth == 2);
    CHECK(raw_exec(dir, "DROP TRIGGER t") == SQLITE_OK);

    /* Staged writes left at close are flushed by close. */
    sb_store_stage_done(st, seq[1], 9500);
    close_store(st);
    st = open_ok(dir);
    rows = load_all(st, 0, 100);
    CHECK(rows->total == 1 && rows->r[0].seq == seq[0]);
    CHECK(sb_store_depth(st, &depth) == SB_OK && depth == 1);
    close_store(st);
}

static void test_reopen(void)
{
    char dir[128];
    struct sb_store *st;
    int64_t seq = 0;
    int64_t last = 0;
    struct rows *rows;

    case_dir(dir, sizeof(dir), "reopen");
    st = open_ok(dir);
    for (int i = 0; i < 10; i++) {
        CHECK(put_simple(st, i, &seq) == SB_OK);
    }
    last = seq;
    close_store(st);
    st = open_ok(dir);
    rows = load_all(st, 0, 100);
    CHECK(rows->total == 10);
    CHECK(rows->n > 9 && rows->r[9].seq == last);
    CHECK(rows->n > 9 && rows->r[9].payload_len > 0 && rows->r[9].payload[0] == '{');
    /* seq keeps growing after reopen: the order of arrival survives a restart */
    CHECK(put_simple(st, 10, &seq) == SB_OK && seq > last);
    close_store(st);
}

/* The child puts n rows and _exit(0)s without closing, or SIGKILLs itself after the last put
 * returns: everything put returned for must be in the file. */
static void test_crash_after_put(bool kill9)
{
    enum { N = 200 };
    char dir[128];
    pid_t pid;
    int status = 0;
    struct sb_store *st;
    int64_t depth = -1;

    case_dir(dir, sizeof(dir), kill9 ? "crash-kill" : "crash-exit");
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct sb_store *cst = NULL;
        char why[256];
        int64_t seq;
        if (sb_store_open(dir, &cst, why, sizeof(why)) != SB_OK) {
            _exit(2);
        }
        for (int i = 0; i < N; i++) {
            if (put_simple(cst, i, &seq) != SB_OK) {
                _exit(3);
            }
        }
        if (kill9) {
            raise(SIGKILL);
        }
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    if (kill9) {
        CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
    } else {
        CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    }
    st = open_ok(dir);
    CHECK(sb_store_depth(st, &depth) == SB_OK);
    CHECKF(depth == N, "depth %lld", (long long)depth);
    close_store(st);
}

/* The parent kills the child with SIGKILL while it is putting as fast as it can; the child
 * writes each seq to a pipe after put returns. Every seq reported must be in the file. */
static void test_kill_mid_stream(void)
{
    char dir[128];
    int fds[2];
    pid_t pid;
    int64_t seqs[4096];
    size_t n = 0;
    size_t got = 0;
    size_t missing = 0;
    struct sb_store *st;
    char sql[128];

    case_dir(dir, sizeof(dir), "crash-mid");
    CHECK(pipe(fds) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct sb_store *cst = NULL;
        char why[256];
        close(fds[0]);
        if (sb_store_open(dir, &cst, why, sizeof(why)) != SB_OK) {
            _exit(2);
        }
        for (int i = 0;; i++) {
            int64_t seq;
            if (put_simple(cst, i, &seq) != SB_OK ||
                write(fds[1], &seq, sizeof(seq)) != (ssize_t)sizeof(seq)) {
                _exit(3);
            }
        }
    }
    close(fds[1]);
    /* Read until 1000 seqs came, kill, then drain what was written before the kill. */
    for (;;) {
        ssize_t r = read(fds[0], (char *)seqs + got, sizeof(seqs) - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
        if (got / sizeof(int64_t) >= 1000 && pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            pid = 0;
        }
        if (got == sizeof(seqs)) {
            break;
        }
    }
    close(fds[0]);
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    n = got / sizeof(int64_t);
    CHECKF(n >= 1000, "only %zu puts reported", n);
    st = open_ok(dir); /* recovers the WAL the killed child left */
    close_store(st);
    for (size_t i = 0; i < n; i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM commands WHERE seq = %lld",
                 (long long)seqs[i]);
        if (raw_int(dir, sql) != 1) {
            missing++;
        }
    }
    CHECKF(missing == 0, "%zu of %zu acknowledged puts missing", missing, n);
}

static void test_dedupe(void)
{
    char dir[128];
    struct sb_store *st;
    bool dup = true;

    case_dir(dir, sizeof(dir), "dedupe");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    /* key, seq, now, window, expected duplicate */
    static const struct {
        const char *key;
        int64_t seq;
        int64_t now;
        bool dup;
    } rows[] = {
        {"k1", 1, 1000, false}, /* fresh: claimed by 1 until 2000 */
        {"k1", 2, 1500, true},  /* another command inside the window */
        {"k1", 1, 1900, false}, /* the holder again (restart): not a duplicate */
        {"k1", 2, 1999, true},  /* the holder's window was not extended */
        {"k1", 2, 2000, false}, /* expired at until_ms: 2 claims it until 3000 */
        {"k1", 1, 2500, true},  /* now 1 is the duplicate */
        {"k2", 1, 2500, false}, /* another key */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        dup = !rows[i].dup;
        CHECKF(sb_store_dedupe_claim(st, rows[i].key, rows[i].seq, rows[i].now, 1000, &dup) ==
                       SB_OK &&
                   dup == rows[i].dup,
               "row %zu", i);
    }
    CHECK(raw_int(dir, "SELECT until_ms FROM dedupe WHERE key = 'k1'") == 3000);
    CHECK(sb_store_dedupe_claim(st, NULL, 1, 0, 1000, &dup) == SB_E_INVAL);
    CHECK(sb_store_dedupe_claim(st, "k", 1, 0, -1, &dup) == SB_E_INVAL);
    CHECK(sb_store_dedupe_claim(st, "k3", 1, INT64_MAX - 5, 1000, &dup) == SB_OK && !dup);
    close_store(st);
}

static void test_prune_queries(void)
{
    char dir[128];
    struct sb_store *st;
    int64_t seq[6];
    int64_t n = -1;
    char *cmd_id = NULL;
    char *recipient = NULL;
    bool dup;

    case_dir(dir, sizeof(dir), "prune");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    for (int i = 0; i < 6; i++) {
        CHECK(put_simple(st, i, &seq[i]) == SB_OK);
    }
    /* 0..3 handed to +1555, at 100, 200, 300, 400; 4 to +1666; 5 never handed */
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof(id), "cmd-%d", i);
        sb_store_stage_attempt(st, seq[i], id, "+15550000000", 1, 100 * (int64_t)(i + 1));
    }
    sb_store_stage_attempt(st, seq[4], "cmd-4", "+16660000000", 1, 250);
    sb_store_stage_outcome(st, seq[0], "cmd-0", "+15550000000", "WHATSAPP", "M0", "sent", 1,
                           "sinch/sent", "{}");
    sb_store_stage_done(st, seq[0], 1000);
    sb_store_stage_outcome(st, seq[1], "cmd-1", "+15550000000", "WHATSAPP", "M1", "sent", 1,
                           "sinch/sent", "{}");
    sb_store_stage_done(st, seq[1], 3000);
    sb_store_stage_outcome(st, seq[2], "cmd-2", "+15550000000", "WHATSAPP", "M2", "sent", 1,
                           "sinch/sent", "{}");
    CHECK(sb_store_flush(st) == SB_OK);

    static const struct {
        const char *recipient;
        int64_t since;
        int64_t want;
    } handed[] = {
        {"+15550000000", 0, 4}, {"+15550000000", 200, 3}, {"+15550000000", 401, 0},
        {"+16660000000", 0, 1}, {"+17770000000", 0, 0},
    };
    for (size_t i = 0; i < sizeof(handed) / sizeof(handed[0]); i++) {
        CHECKF(sb_store_count_handed(st, handed[i].recipient, handed[i].since, &n) == SB_OK &&
                   n == handed[i].want,
               "row %zu: %lld", i, (long long)n);
    }
    CHECK(sb_store_count_handed(st, NULL, 0, &n) == SB_E_INVAL);

    CHECK(sb_store_lookup_message(st, "M1", &cmd_id, &recipient) == SB_OK);
    CHECK_STR(cmd_id, "cmd-1");
    CHECK_STR(recipient, "+15550000000");
    free(cmd_id);
    free(recipient);
    CHECK(sb_store_lookup_message(st, "nope", &cmd_id, &recipient) == SB_OK);
    CHECK(cmd_id == NULL && recipient == NULL);
    CHECK(sb_store_lookup_message(st, NULL, &cmd_id, &recipient) == SB_E_INVAL);

    CHECK(sb_store_depth(st, &n) == SB_OK && n == 4);
    CHECK(sb_store_dedupe_claim(st, "old", seq[0], 0, 500, &dup) == SB_OK);  /* until 500 */
    CHECK(sb_store_dedupe_claim(st, "new", seq[1], 0, 5000, &dup) == SB_OK); /* until 5000 */
    CHECK(sb_store_prune(st, 2000, 2000) ==
          SB_OK); /* seq0 (finished 1000) goes, seq1 (3000) stays */
    CHECK(raw_int(dir, "SELECT count(*) FROM commands") == 5);
    CHECK(raw_int(dir, "SELECT count(*) FROM dedupe") == 1);
    CHECK(sb_store_lookup_message(st, "M0", &cmd_id, &recipient) == SB_OK && cmd_id == NULL);
    CHECK(sb_store_depth(st, &n) == SB_OK && n == 4); /* unfinished rows are never pruned */
    CHECK(sb_store_prune(st, 10000, 10000) == SB_OK);
    CHECK(raw_int(dir, "SELECT count(*) FROM commands") == 4);
    CHECK(raw_int(dir, "SELECT count(*) FROM dedupe") == 0);
    close_store(st);

    /* More than one prune batch. */
    case_dir(dir, sizeof(dir), "prune-batches");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    {
        int failed = 0;
        for (int i = 0; i < 2500; i++) {
            int64_t s;
            failed += put_simple(st, i, &s) != SB_OK;
            sb_store_stage_done(st, s, 10);
        }
        CHECK(failed == 0);
    }
    CHECK(sb_store_flush(st) == SB_OK);
    CHECK(sb_store_prune(st, 11, 11) == SB_OK);
    /* All but the newest: it holds max(seq), so that no seq is handed out twice. */
    CHECK(raw_int(dir, "SELECT count(*) FROM commands") == 1);
    {
        int64_t s;
        CHECK(put_simple(st, 9999, &s) == SB_OK && s == 2501);
    }
    close_store(st);
}

/* A trigger added from a second connection makes one UPDATE fail in the middle of a flush:
 * the whole flush rolls back and every staged write is kept for the next one. The same for
 * an INSERT: put fails, and the next put commits on its own. */
static void test_failures(void)
{
    char dir[128];
    struct sb_store *st;
    int64_t seq[3];
    int64_t s = 0;

    case_dir(dir, sizeof(dir), "failures");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    for (int i = 0; i < 3; i++) {
        CHECK(put_simple(st, i, &seq[i]) == SB_OK);
    }
    CHECK(raw_exec(dir, "CREATE TRIGGER boom BEFORE UPDATE ON commands WHEN NEW.attempts = 42"
                        " BEGIN SELECT RAISE(ABORT, 'injected failure'); END") == SQLITE_OK);
    sb_store_stage_attempt(st, seq[0], "a", NULL, 1, 100);
    sb_store_stage_attempt(st, seq[1], "b", NULL, 42, 100); /* fails */
    sb_store_stage_attempt(st, seq[2], "c", NULL, 1, 100);
    CHECK(sb_store_flush(st) == SB_E_STORE);
    CHECK(sb_store_staged(st) == 3);
    CHECK(raw_int(dir, "SELECT count(*) FROM commands WHERE attempts > 0") == 0); /* atomic */
    /* a put between failed flushes is committed on its own */
    CHECK(put_simple(st, 3, &s) == SB_OK);
    CHECK(raw_int(dir, "SELECT count(*) FROM commands") == 4);
    sb_store_stage_done(st, seq[0], 500);
    CHECK(sb_store_flush(st) == SB_E_STORE);
    CHECK(sb_store_staged(st) == 4);
    CHECK(raw_exec(dir, "DROP TRIGGER boom") == SQLITE_OK);
    CHECK(sb_store_flush(st) == SB_OK);
    CHECK(sb_store_staged(st) == 0);
    CHECK(raw_int(dir, "SELECT attempts FROM commands WHERE cmd_id = 'b'") == 42);
    CHECK(raw_int(dir, "SELECT state FROM commands WHERE cmd_id = 'a'") == 2);

    CHECK(raw_exec(dir, "CREATE TRIGGER boom2 BEFORE INSERT ON commands WHEN NEW.gen_id = 'g7'"
                        " BEGIN SELECT RAISE(ABORT, 'injected failure'); END") == SQLITE_OK);
    CHECK(put_simple(st, 7, &s) == SB_E_STORE);
    CHECK(put_simple(st, 8, &s) == SB_OK);
    CHECK(raw_int(dir, "SELECT count(*) FROM commands WHERE gen_id IN ('g7', 'g8')") == 1);
    close_store(st);
}

/* A full disk, made with RLIMIT_FSIZE in a child: put fails with SB_E_STORE (no crash), and
 * works again once there is room. Exit codes say which step failed. */
static void test_disk_full(void)
{
    char dir[128];
    pid_t pid;
    int status = 0;

    case_dir(dir, sizeof(dir), "full");
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct sb_store *cst = NULL;
        char why[256];
        struct rlimit rl;
        int64_t seq;
        int i = 0;
        enum sb_err err = SB_OK;
        signal(SIGXFSZ, SIG_IGN);
        if (sb_store_open(dir, &cst, why, sizeof(why)) != SB_OK) {
            _exit(2);
        }
        getrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = (rlim_t)512 * 1024;
        setrlimit(RLIMIT_FSIZE, &rl);
        for (; i < 100000 && err == SB_OK; i++) {
            err = put_simple(cst, i, &seq);
        }
        if (err != SB_E_STORE) {
            _exit(3);
        }
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_FSIZE, &rl);
        if (put_simple(cst, i, &seq) != SB_OK) {
            _exit(4);
        }
        close_store(cst);
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}

/* ---- concurrency: paho's thread puts while the loop stages and flushes ---- */

enum { PUT_THREADS = 2, PUTS_EACH = 5000, PUTS_ALL = PUT_THREADS * PUTS_EACH };

struct putter {
    struct sb_store *st;
    int base;
    int failures;
};

static void *put_thread(void *arg)
{
    struct putter *p = arg;
    int64_t seq;

    for (int i = 0; i < PUTS_EACH; i++) {
        if (put_simple(p->st, p->base + i, &seq) != SB_OK) {
            p->failures++;
        }
    }
    return NULL;
}

static void test_threads(void)
{
    char dir[128];
    struct sb_store *st;
    pthread_t th[PUT_THREADS];
    struct putter p[PUT_THREADS];
    int64_t depth = 0;
    int flush_failures = 0;
    int other_failures = 0;
    int64_t next = 1;
    int rounds = 0;

    case_dir(dir, sizeof(dir), "threads");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    for (int t = 0; t < PUT_THREADS; t++) {
        p[t] = (struct putter){.st = st, .base = t * PUTS_EACH, .failures = 0};
        CHECK(pthread_create(&th[t], NULL, put_thread, &p[t]) == 0);
    }
    /* The loop's side: mark what is there as attempted, flush, read the depth. */
    while (depth < PUTS_ALL && rounds < 100000) {
        static struct rows rowbuf;
        struct rows *rows = &rowbuf;
        bool dup;
        rounds++;
        memset(rows, 0, sizeof(*rows));
        if (sb_store_load_unfinished(st, next - 1, MAX_ROWS, collect, rows, &rows->through) !=
            SB_OK) {
            other_failures++;
        }
        for (size_t i = 0; i < rows->n; i++) {
            sb_store_stage_attempt(st, rows->r[i].seq, rows->r[i].gen_id, "+46700000000", 1, 1000);
            next = rows->r[i].seq + 1;
        }
        if (sb_store_flush(st) != SB_OK) {
            flush_failures++;
        }
        if (sb_store_dedupe_claim(st, "k", 1, rounds, 10, &dup) != SB_OK ||
            sb_store_depth(st, &depth) != SB_OK) {
            other_failures++;
        }
        if (rows->n == 0) {
            struct timespec ts = {0, 100 * 1000L};
            nanosleep(&ts, NULL);
        }
    }
    for (int t = 0; t < PUT_THREADS; t++) {
        pthread_join(th[t], NULL);
        CHECKF(p[t].failures == 0, "thread %d: %d failed puts", t, p[t].failures);
    }
    CHECK(flush_failures == 0 && other_failures == 0);
    CHECK(sb_store_depth(st, &depth) == SB_OK && depth == PUTS_ALL);
    close_store(st);
    CHECK(raw_int(dir, "SELECT count(DISTINCT gen_id) FROM commands") == PUTS_ALL);
    CHECK(raw_int(dir, "SELECT count(*) FROM commands WHERE attempts = 1 AND cmd_id = gen_id") > 0);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/test_store.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    sb_log_setup(SB_LOG_ERROR, SB_LOG_TEXT);
    fprintf(stderr, "test_store: the store's error lines below come from injected failures\n");
    test_open_errors();
    test_open_creates();
    test_put_load();
    test_staged();
    test_reopen();
    test_crash_after_put(false);
    test_crash_after_put(true);
    test_kill_mid_stream();
    test_dedupe();
    test_prune_queries();
    test_failures();
    test_disk_full();
    test_threads();
    rm_rf(root);
    return check_report();
}
