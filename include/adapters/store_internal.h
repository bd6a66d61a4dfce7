/* What the store's files share, and nothing else includes (but the store's unit tests): the
 * struct, the statement lists and the helpers that take the lock, log a SQLite error once, and
 * run a statement. adapters/store/store.c owns the connection, the schema, commands and the
 * staged writes; adapters/store/store_inbox.c the inbound events (issue 3);
 * adapters/store/store_checkpoint.c the thread that copies the WAL into the database. */
#ifndef SB_ADAPTERS_STORE_INTERNAL_H
#define SB_ADAPTERS_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapters/store.h"

/* store.c's statements (their SQL is in store.c). */
enum sb_store_stmt {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_PUT,
    S_LOAD,
    S_ATTEMPT,
    S_OUTCOME,
    S_DONE,
    S_DEDUPE_GET,
    S_DEDUPE_SET,
    S_PRUNE_COMMANDS,
    S_PRUNE_DEDUPE,
    S_COUNT_HANDED,
    S_LOOKUP,
    S_SAVEPOINT, /* the staged writes inside put_events' transaction */
    S_ROLLBACK_TO,
    S_RELEASE,
    S_COUNT,
};

/* store_inbox.c's statements; their SQL is sb_store_inbox_sql, prepared by sb_store_open(). */
enum sb_store_inbox_stmt {
    I_KEY_PUT,
    I_STATUS_GET,
    I_STATUS_SET,
    I_INBOX_PUT,
    I_CONTACT_SET,
    I_INBOX_LOAD,
    I_INBOX_DONE, /* applied by sb_store_flush() for a staged inbox_done */
    I_INBOX_DEPTH,
    I_LAST_INBOUND,
    I_PRUNE_KEYS, /* run by sb_store_prune() */
    I_PRUNE_STATUS,
    I_MESSAGE_IN_PUT, /* the history of inbound messages (schema v3) */
    I_PRUNE_MESSAGES_IN,
    I_COUNT,
};

extern const char *const sb_store_inbox_sql[I_COUNT];

struct sb_store_op;   /* one staged write, private to store.c */
struct sb_store_ckpt; /* the checkpointer, private to store_checkpoint.c */

struct sb_store {
    pthread_mutex_t lock;         /* error-checking: a re-entry fails instead of deadlocking */
    sqlite3 *db;                  /* {lock} */
    sqlite3_stmt *stmt[S_COUNT];  /* {lock} */
    sqlite3_stmt *istmt[I_COUNT]; /* {lock} */
    char *path;                   /* <dir>/sinch-bridge.db */
    int lock_fd;                  /* <dir>/sinch-bridge.lock, flock()ed: one bridge a dir */
    struct sb_store_ckpt *ckpt;   /* NULL until the store is open */
    int64_t unfinished;           /* {lock} commands in state < 2: the outbox's depth */
    int64_t max_seq;              /* {lock} the highest seq in commands, 0 when empty */
    int64_t done_applied;         /* {lock} rows the applied DONE ops finished, until commit */
    struct sb_store_op *ops;      /* staged writes, in order; loop thread only */
    size_t nops;                  /* loop thread only */
    size_t cap;                   /* loop thread only */
};

/* Starts the checkpointer: its own connection to st->path, and a WAL hook on st->db that asks
 * it for a pass every MiB of WAL (SQLite's auto-checkpoint, which runs inside a commit, is off
 * from then on). On failure writes the reason into `why`. Thread: the opener. */
enum sb_err sb_store_ckpt_start(struct sb_store *st, char *why, size_t why_len) SB_MUST_CHECK;
/* Stops and joins the thread, closes its connection. Accepts a store without one. */
void sb_store_ckpt_stop(struct sb_store *st);

/* What the checkpointer did since the store opened. Thread: any. */
struct sb_store_ckpt_stats {
    uint64_t passes;     /* checkpoints run, the capped ones included */
    uint64_t capped;     /* passes that held the store's lock, the WAL having reached its cap */
    uint64_t failures;   /* passes that failed (logged) */
    uint64_t slowest_ms; /* the longest pass */
    uint64_t restarts;   /* commits that found the WAL copied and started it over */
};
void sb_store_ckpt_stats(const struct sb_store *st, struct sb_store_ckpt_stats *out);

/* Takes st->lock; SB_E_BUG (logged, naming `what`) when this thread holds it already. */
enum sb_err sb_store_lock(struct sb_store *st, const char *what);
void sb_store_unlock(struct sb_store *st);

/* Maps a SQLite result code to ours (SB_E_NOMEM or SB_E_STORE) and logs it once, with sqlite's
 * own message and a hint for a full disk. The caller holds the lock. */
__attribute__((format(printf, 3, 4))) enum sb_err sb_store_fail(struct sb_store *st, int rc,
                                                                const char *fmt, ...);

/* Gets the connection ready for a write that must be committed when the caller returns: resets
 * any statement left active (logged: a bug), rolls back a transaction a failed flush could not
 * end, and fails (SB_E_STORE) when the connection is still inside one. The caller holds the
 * lock; `what` names the caller in the log line. */
enum sb_err sb_store_settle(struct sb_store *st, const char *what);

/* BEGIN IMMEDIATE, COMMIT and ROLLBACK (a no-op outside a transaction; its own failure is
 * logged). The caller holds the lock. begin and commit return the SQLite code. */
int sb_store_begin(struct sb_store *st);
int sb_store_commit(struct sb_store *st);
void sb_store_rollback(struct sb_store *st);

/* Applies the staged writes inside the caller's transaction (put_events': one commit a turn),
 * under a savepoint: when one fails they are all undone, logged, and kept staged for the next
 * sb_store_flush(), and the caller's own writes go on. Sets *applied; if true the caller calls
 * sb_store_staged_committed() once its COMMIT succeeded (a failed COMMIT rolls them back with
 * the rest, and they stay staged). Returns a SQLite error only when the savepoint could not be
 * undone or ended: then the caller must roll its whole transaction back. The caller holds the
 * lock. */
int sb_store_apply_staged(struct sb_store *st, bool *applied);
void sb_store_staged_committed(struct sb_store *st);

/* Runs a count(*)-like statement whose parameters are bound, resets it. Caller holds the lock. */
enum sb_err sb_store_count(struct sb_store *st, sqlite3_stmt *s, int64_t *out, const char *what);

/* Steps a statement that returns no row we need, then resets it and drops its bindings (they
 * are SQLITE_STATIC pointers into the caller's strings). Returns SQLITE_OK or the error. */
static inline int sb_store_run(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Resets a statement after reading its rows and drops its bindings. */
static inline void sb_store_finish(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Binds a string (borrowed until the statement is reset) or NULL. */
static inline int sb_store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

#endif
