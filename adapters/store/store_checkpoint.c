/* The store's checkpointer: a thread with a connection of its own that copies the WAL back into
 * the database, so that the fsyncs a checkpoint makes are never inside a commit on paho's
 * receive thread or on the loop (a soak measured them at up to 0.3 s on this VM's disk, and an SD
 * card does worse; each one held up every command and webhook behind it).
 *
 * How the WAL stays bounded. A commit's WAL hook (on the committing thread, under the store's
 * lock) asks for a pass when the WAL has grown by CKPT_MARK_BYTES since the last one. A pass is
 * PASSIVE: it copies what is committed without blocking the writers. SQLite starts the WAL over
 * at the first commit after a pass that left nothing to copy, which under a light or bursty load
 * is most passes. Under a load that never pauses, commits land during every pass and the WAL
 * keeps growing; when it reaches CKPT_CAP_BYTES one pass runs holding the store's lock, so no
 * commit can land during it: it copies the little the previous pass left, and the next commit
 * starts the WAL over. That one pass is the only one the hot paths wait for. */
#include "adapters/store_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "bridge/log.h"
#include "bridge/loop.h"

#define CKPT_MARK_BYTES ((int64_t)1024 * 1024)      /* a pass every MiB of WAL */
#define CKPT_CAP_BYTES  ((int64_t)16 * 1024 * 1024) /* a pass under the lock at this size */
#define CKPT_BUSY_MS    5000
#define CKPT_SLOW_MS    1000 /* a pass slower than this is logged (the disk is struggling) */

struct sb_store_ckpt {
    struct sb_store *st; /* the store's lock, for the capped pass */
    sqlite3 *db;         /* this thread's own connection */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool wanted; /* {mu} a pass was asked for */
    bool stop;   /* {mu} */
    int mark;    /* WAL frames a pass is asked for at */
    int cap;     /* WAL frames at which the pass holds the store's lock */
    /* Set by the WAL hook and the thread, read by both: */
    atomic_int frames;   /* the WAL's frames after the last commit */
    atomic_int next_ask; /* the frame count at which the hook asks for the next pass */
    atomic_bool asked;   /* a pass is asked for and has not started: the hook signals once */
    atomic_uint_fast64_t passes, capped, failures, slowest_ms, restarts;
    bool failing; /* this thread's: the last pass failed (logged once until one succeeds) */
};

/* The WAL hook: after every commit of the store's connection, on the committing thread, with the
 * frames the WAL now holds (fewer than before: it started over). Cheap unless it asks for a
 * pass. */
static int on_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct sb_store_ckpt *c = arg;

    (void)db;
    (void)name;
    if (frames < atomic_exchange(&c->frames, frames)) {
        atomic_fetch_add(&c->restarts, 1);
    }
    if (frames >= atomic_load(&c->next_ask) && !atomic_exchange(&c->asked, true)) {
        pthread_mutex_lock(&c->mu);
        c->wanted = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

/* One PASSIVE checkpoint. Sets *log to the frames in the WAL and *done to those now copied. */
static int pass(struct sb_store_ckpt *c, int *log, int *done)
{
    int64_t t0 = sb_mono_ms(), ms;
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, log, done);

    ms = sb_mono_ms() - t0;
    atomic_fetch_add(&c->passes, 1);
    if ((uint64_t)ms > atomic_load(&c->slowest_ms)) {
        atomic_store(&c->slowest_ms, (uint64_t)ms);
    }
    if ((rc & 0xff) == SQLITE_BUSY) {
        /* Another connection is checkpointing (an operator's sqlite3 shell closing, say). */
        sb_log(SB_LOG_DEBUG, "store", "checkpoint: busy, tried again at the next MiB");
        return rc;
    }
    if (rc != SQLITE_OK) {
        atomic_fetch_add(&c->failures, 1);
        if (!c->failing) {
            sb_log(SB_LOG_ERROR, "store",
                   "checkpoint: %s (%s): the WAL grows until one succeeds (tried again every "
                   "MiB of WAL)",
                   sqlite3_errmsg(c->db), sqlite3_errstr(rc));
        }
        c->failing = true;
        return rc;
    }
    if (c->failing) {
        sb_log(SB_LOG_NOTICE, "store", "checkpoint: working again");
        c->failing = false;
    }
    if (ms >= CKPT_SLOW_MS) {
        sb_log(SB_LOG_WARN, "store",
               "checkpoint took %lld ms: the disk is slow (commands and webhooks did not wait)",
               (long long)ms);
    }
    return rc;
}

static void *run(void *arg)
{
    struct sb_store_ckpt *c = arg;

    for (;;) {
        int log = 0, done = 0;

        pthread_mutex_lock(&c->mu);
        while (!c->wanted && !c->stop) {
            pthread_cond_wait(&c->cond, &c->mu);
        }
        if (c->stop) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        c->wanted = false;
        pthread_mutex_unlock(&c->mu);
        atomic_store(&c->asked, false);

        /* log and done count the frames the pass saw, which it copied all of unless it
         * failed: what tells whether commits landed meanwhile is the WAL's size now. */
        int rc = pass(c, &log, &done);
        int now = atomic_load(&c->frames);
        if (rc == SQLITE_OK && now > done && now >= c->cap &&
            sb_store_lock(c->st, "checkpoint") == SB_OK) {
            /* No commit can land during this one: it leaves nothing to copy. */
            atomic_fetch_add(&c->capped, 1);
            rc = pass(c, &log, &done);
            now = atomic_load(&c->frames);
            sb_store_unlock(c->st);
        }
        if (rc != SQLITE_OK) {
            atomic_store(&c->next_ask, now + c->mark);
        } else if (now > done) {
            /* Commits landed during the pass: the WAL goes on, a pass when a mark more of it
             * is left to copy. */
            atomic_store(&c->next_ask, done + c->mark);
        } else {
            /* All copied: the next commit starts the WAL over. */
            atomic_store(&c->next_ask, c->mark);
        }
    }
}

static void destroy(struct sb_store_ckpt *c)
{
    sqlite3_close(c->db);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

enum sb_err sb_store_ckpt_start(struct sb_store *st, char *why, size_t why_len)
{
    struct sb_store_ckpt *c = calloc(1, sizeof(*c));
    int64_t page = 1024;
    sqlite3_stmt *s = NULL;
    int rc;

    if (!c) {
        snprintf(why, why_len, "out of memory");
        return SB_E_NOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->st = st;
    rc = sqlite3_open_v2(st->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(c->db, CKPT_BUSY_MS);
        /* The copy reads WAL frames into its own buffer; a small cache is all it needs. */
        rc = sqlite3_exec(c->db, "PRAGMA cache_size=-64;", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(c->db, "PRAGMA page_size", -1, &s, NULL);
    }
    if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 0) > 0) {
        page = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_OK) {
        snprintf(why, why_len, "checkpoint connection: %s",
                 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        destroy(c);
        return SB_E_STORE;
    }
    c->mark = (int)(CKPT_MARK_BYTES / page);
    c->cap = (int)(CKPT_CAP_BYTES / page);
    atomic_init(&c->frames, 0);
    atomic_init(&c->next_ask, c->mark);
    if (pthread_create(&c->thread, NULL, run, c) != 0) {
        snprintf(why, why_len, "cannot start the checkpoint thread");
        destroy(c);
        return SB_E_NOMEM;
    }
    st->ckpt = c;
    /* Replaces SQLite's own auto-checkpoint, which would run inside the commit. */
    sqlite3_wal_hook(st->db, on_commit, c);
    return SB_OK;
}

void sb_store_ckpt_stop(struct sb_store *st)
{
    struct sb_store_ckpt *c = st->ckpt;

    if (!c) {
        return;
    }
    sqlite3_wal_hook(st->db, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    st->ckpt = NULL;
    destroy(c);
}

void sb_store_ckpt_stats(const struct sb_store *st, struct sb_store_ckpt_stats *out)
{
    const struct sb_store_ckpt *c = st->ckpt;

    *out = (struct sb_store_ckpt_stats){0};
    if (c) {
        out->passes = atomic_load(&c->passes);
        out->capped = atomic_load(&c->capped);
        out->failures = atomic_load(&c->failures);
        out->slowest_ms = atomic_load(&c->slowest_ms);
        out->restarts = atomic_load(&c->restarts);
    }
}
