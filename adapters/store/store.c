/* The durable store on SQLite: one WAL-mode database, <dir>/sinch-bridge.db, one connection for
 * every read and write. sb_store_put_command() runs on paho's receive thread and commits before
 * it returns (that commit is what lets paho send the PUBACK); everything else runs on the loop,
 * whose writes are staged in memory and applied by sb_store_flush() in one transaction a loop
 * turn. The connection is opened SQLITE_OPEN_NOMUTEX and guarded by st->lock. Webhook events
 * (the inbox, issue 3) are in store_inbox.c; the checkpoints, on a thread and a connection of
 * their own, in store_checkpoint.c; what the files share is in store_internal.h. */
#include "adapters/store.h"
#include "adapters/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "bridge/log.h"

#define DB_FILE          "sinch-bridge.db"
#define SCHEMA_VERSION   5
#define BUSY_TIMEOUT_MS  5000
#define PRUNE_BATCH      1000 /* rows a prune statement deletes under the lock */
#define STAGE_FIRST_SIZE 64
#define LOCK_FILE        "sinch-bridge.lock"

/* Schema v1. Index choices, checked with EXPLAIN QUERY PLAN on 3.40:
 * - commands_unfinished is on (seq, state) WHERE state < 2, not on state: the load query
 *   (state < 2 AND seq > ? ORDER BY seq LIMIT ?) then seeks it in seq order with no sort and
 *   never walks the history, and count(*) for the depth is answered from it alone. With an
 *   index on (state) the planner walks the table by rowid through every DONE row instead.
 * - The other indexes are partial so that put_command's INSERT (state 0, nothing handed,
 *   no message id) touches the table and commands_unfinished only: two pages a commit.
 * - commands_finished and dedupe_until let prune delete in small batches without scanning.
 * - seq is AUTOINCREMENT: the outbox loads rows after the last seq it saw, so a seq must never
 *   be handed out twice, not even after prune deleted the newest rows.
 * Issue 3 (inbound) adds version 2 below, issue 4 (operations) version 3, version 4 drops
 * commands_unfinished and AUTOINCREMENT again (why is at schema_v4), and version 5 writes an
 * inbound message's payload once. Append a migration; never edit an existing one. */
static const char schema_v1[] =
    "CREATE TABLE commands("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " received_ms INTEGER NOT NULL,"
    " topic TEXT NOT NULL,"
    " payload BLOB NOT NULL,"
    " response_topic TEXT,"
    " correlation BLOB,"
    " gen_id TEXT NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " cmd_id TEXT,"
    " recipient TEXT,"
    " channel TEXT,"
    " message_id TEXT,"
    " status TEXT,"
    " handed_ms INTEGER,"
    " outcome_topic TEXT,"
    " outcome TEXT,"
    " finished_ms INTEGER);"
    "CREATE INDEX commands_unfinished ON commands(seq, state) WHERE state < 2;"
    "CREATE INDEX commands_message ON commands(message_id) WHERE message_id IS NOT NULL;"
    "CREATE INDEX commands_handed ON commands(recipient, handed_ms) WHERE handed_ms IS NOT NULL;"
    "CREATE INDEX commands_finished ON commands(finished_ms) WHERE state = 2;"
    "CREATE TABLE dedupe(key TEXT PRIMARY KEY, seq INTEGER NOT NULL, until_ms INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE INDEX dedupe_until ON dedupe(until_ms);";

/* Schema v2 (issue 3, inbound; used by store_inbox.c):
 * - inbox: webhook events stored before their 200, deleted once the broker acknowledged their
 *   publish. seq is AUTOINCREMENT for the same reason as commands.seq.
 * - event_keys: each event's dedupe key, kept until its until_ms (at least 24 h: promise 2)
 *   and then until a prune; the index lets prune delete in batches.
 * - message_status: the highest delivery rank published per message id and channel, so that
 *   a message's status never moves backwards; pruned by updated_ms.
 * - contacts: the last inbound time per sender, for BRIDGE_WINDOW_CHECK. Never pruned: one
 *   short row per person that ever wrote to us.
 * The keyed tables are WITHOUT ROWID: each lookup is one b-tree seek on the key itself. */
static const char schema_v2[] =
    "CREATE TABLE inbox("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " received_ms INTEGER NOT NULL,"
    " topic TEXT NOT NULL,"
    " payload TEXT NOT NULL);"
    "CREATE TABLE event_keys(key TEXT PRIMARY KEY, until_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX event_keys_until ON event_keys(until_ms);"
    "CREATE TABLE message_status("
    " message_id TEXT NOT NULL,"
    " channel TEXT NOT NULL,"
    " rank INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY(message_id, channel)) WITHOUT ROWID;"
    "CREATE INDEX message_status_updated ON message_status(updated_ms);"
    "CREATE TABLE contacts(identity TEXT PRIMARY KEY, last_inbound_ms INTEGER NOT NULL)"
    " WITHOUT ROWID;";

/* Schema v3 (issue 4, the history request; used by store_inbox.c and store_history.c):
 * - messages_in: each inbound message's published payload, by sender, kept for the history
 *   period like finished commands (the inbox row itself is deleted once published);
 * - message_status.status: the status name itself, since ranks are shared (READ and FAILED). */
static const char schema_v3[] =
    "CREATE TABLE messages_in("
    " seq INTEGER PRIMARY KEY,"
    " received_ms INTEGER NOT NULL,"
    " contact TEXT NOT NULL,"
    " payload TEXT NOT NULL);"
    "CREATE INDEX messages_in_contact ON messages_in(contact, received_ms);"
    "CREATE INDEX messages_in_received ON messages_in(received_ms);"
    "ALTER TABLE message_status ADD COLUMN status TEXT;";

/* Schema v4 (the outbox's throughput, issue 2): put_command's commit is on the broker's path
 * (the PUBACK waits for it), and v1 made it write three pages: the table, commands_unfinished
 * and sqlite_sequence (AUTOINCREMENT). v4 rebuilds commands with neither, so that an INSERT
 * writes the table's last page alone (measured: 30 us a put before, 7 us after, with the
 * connection settings of configure()). What the two gave is kept another way:
 * - the load query walks the table by rowid from the caller's last seq, and a load that ends
 *   short tells the caller how far it looked (sb_store_load_unfinished's *through), so the
 *   history below is walked once, at the first load after start;
 * - the depth is a counter (st->unfinished), counted once at open;
 * - a seq is still never handed out twice: without AUTOINCREMENT SQLite takes max(seq) + 1,
 *   and prune never deletes the row holding max(seq). */
static const char schema_v4[] =
    "CREATE TABLE commands_v4("
    " seq INTEGER PRIMARY KEY,"
    " received_ms INTEGER NOT NULL,"
    " topic TEXT NOT NULL,"
    " payload BLOB NOT NULL,"
    " response_topic TEXT,"
    " correlation BLOB,"
    " gen_id TEXT NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " cmd_id TEXT,"
    " recipient TEXT,"
    " channel TEXT,"
    " message_id TEXT,"
    " status TEXT,"
    " handed_ms INTEGER,"
    " outcome_topic TEXT,"
    " outcome TEXT,"
    " finished_ms INTEGER);"
    "INSERT INTO commands_v4 SELECT seq, received_ms, topic, payload, response_topic, correlation,"
    " gen_id, state, attempts, cmd_id, recipient, channel, message_id, status, handed_ms,"
    " outcome_topic, outcome, finished_ms FROM commands;"
    /* When prune had deleted the newest rows, AUTOINCREMENT remembered a higher seq than any
     * row holds: a finished placeholder row keeps it, so that no seq is reused after all. */
    "INSERT INTO commands_v4(seq, received_ms, topic, payload, gen_id, state, finished_ms)"
    " SELECT seq, 0, '', x'', '', 2, 0 FROM sqlite_sequence WHERE name = 'commands'"
    " AND seq > (SELECT coalesce(max(seq), 0) FROM commands);"
    "DROP TABLE commands;"
    "DELETE FROM sqlite_sequence WHERE name = 'commands';"
    "ALTER TABLE commands_v4 RENAME TO commands;"
    "CREATE INDEX commands_message ON commands(message_id) WHERE message_id IS NOT NULL;"
    "CREATE INDEX commands_handed ON commands(recipient, handed_ms) WHERE handed_ms IS NOT NULL;"
    "CREATE INDEX commands_finished ON commands(finished_ms) WHERE state = 2;";

/* Schema v5 (the inbound throughput, issue 3): an inbound message's payload was written twice
 * in the commit before its 200, into the inbox and into messages_in, and it is most of the
 * bytes. Now its inbox row has an empty payload and points at the messages_in row
 * (store_inbox.c); prune keeps a messages_in row while an inbox row points at it. */
static const char schema_v5[] = "ALTER TABLE inbox ADD COLUMN message_in INTEGER;";

/* migrations[i] takes the schema from version i to i + 1. */
static const char *const migrations[SCHEMA_VERSION] = {schema_v1, schema_v2, schema_v3, schema_v4,
                                                       schema_v5};

/* Prepared once at open, reset after every use. A NULL string in stage_attempt and
 * stage_outcome keeps what the row has (COALESCE), so a later op never erases an id. */
static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_PUT] = "INSERT INTO commands(received_ms, topic, payload, response_topic, correlation,"
              " gen_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_LOAD] = "SELECT seq, received_ms, topic, payload, response_topic, correlation, gen_id,"
               " state, attempts, outcome_topic, outcome FROM commands"
               " WHERE seq > ?1 AND state < 2 ORDER BY seq LIMIT ?2",
    [S_ATTEMPT] = "UPDATE commands SET attempts = ?2, cmd_id = COALESCE(?3, cmd_id),"
                  " recipient = COALESCE(?4, recipient),"
                  " handed_ms = COALESCE(handed_ms, NULLIF(?5, 0)) WHERE seq = ?1",
    [S_OUTCOME] = "UPDATE commands SET state = 1, attempts = ?2, cmd_id = COALESCE(?3, cmd_id),"
                  " recipient = COALESCE(?4, recipient), channel = COALESCE(?5, channel),"
                  " message_id = COALESCE(?6, message_id), status = COALESCE(?7, status),"
                  " outcome_topic = ?8, outcome = ?9 WHERE seq = ?1",
    /* The outcome payload is dropped to free space; what history needs stays. */
    [S_DONE] = "UPDATE commands SET state = 2, finished_ms = ?2, outcome = NULL"
               " WHERE seq = ?1 AND state < 2",
    [S_DEDUPE_GET] = "SELECT seq, until_ms FROM dedupe WHERE key = ?1",
    [S_DEDUPE_SET] = "INSERT OR REPLACE INTO dedupe(key, seq, until_ms) VALUES (?1, ?2, ?3)",
    /* The newest row stays, however old: it holds max(seq) (see schema_v4). */
    [S_PRUNE_COMMANDS] = "DELETE FROM commands WHERE seq IN (SELECT seq FROM commands"
                         " WHERE state = 2 AND finished_ms < ?1"
                         " AND seq < (SELECT max(seq) FROM commands) LIMIT ?2)",
    [S_PRUNE_DEDUPE] = "DELETE FROM dedupe WHERE key IN (SELECT key FROM dedupe"
                       " WHERE until_ms <= ?1 LIMIT ?2)",
    [S_COUNT_HANDED] = "SELECT count(*) FROM commands WHERE recipient = ?1 AND handed_ms >= ?2",
    [S_LOOKUP] = "SELECT cmd_id, recipient FROM commands WHERE message_id = ?1"
                 " ORDER BY seq DESC LIMIT 1",
    [S_SAVEPOINT] = "SAVEPOINT staged",
    [S_ROLLBACK_TO] = "ROLLBACK TO staged",
    [S_RELEASE] = "RELEASE staged",
};

enum op_type {
    OP_ATTEMPT,
    OP_OUTCOME,
    OP_DONE,
    OP_INBOX_DONE,
};

enum op_str {
    STR_CMD_ID,
    STR_RECIPIENT,
    STR_CHANNEL,
    STR_MESSAGE_ID,
    STR_STATUS,
    STR_OUTCOME_TOPIC,
    STR_OUTCOME,
    STR_COUNT,
};

/* One staged write. */
struct sb_store_op {
    enum op_type type;
    int64_t seq;              /* the command's; INBOX_DONE: the inbox row's */
    int64_t ms;               /* ATTEMPT: handed_ms (0 keeps the row's); DONE: finished_ms */
    int attempts;             /* ATTEMPT, OUTCOME */
    const char *s[STR_COUNT]; /* NULL or a copy inside buf */
    char *buf;                /* owns the copies: one allocation an op */
};

/* Maps a SQLite result code to ours and logs it once, here, with sqlite's own message.
 * The caller holds the lock (sqlite3_errmsg reads the connection). */
enum sb_err sb_store_fail(struct sb_store *st, int rc, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    int primary = rc & 0xff;
    const char *hint = "";

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (primary == SQLITE_FULL) {
        hint = ": the disk is full; commands and webhooks are refused until space is freed";
    } else if (primary == SQLITE_IOERR) {
        hint = ": I/O error on the data dir";
    }
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
        sb_log(SB_LOG_WARN, "store", "%s: %s (%s, %s): another process holds the database?", what,
               sqlite3_errmsg(st->db), sqlite3_errstr(rc), st->path);
    } else {
        sb_log(SB_LOG_ERROR, "store", "%s: %s (%s, %s)%s", what, sqlite3_errmsg(st->db),
               sqlite3_errstr(rc), st->path, hint);
    }
    return primary == SQLITE_NOMEM ? SB_E_NOMEM : SB_E_STORE;
}

enum sb_err sb_store_lock(struct sb_store *st, const char *what)
{
    int e = pthread_mutex_lock(&st->lock);
    if (e != 0) {
        /* EDEADLK: called from inside a load callback, on the thread that holds the lock. */
        sb_log(SB_LOG_ERROR, "store", "%s: lock failed (error %d): store re-entered?", what, e);
        return SB_E_BUG;
    }
    return SB_OK;
}

void sb_store_unlock(struct sb_store *st)
{
    pthread_mutex_unlock(&st->lock);
}

/* Ends a failed transaction. If even ROLLBACK fails the connection stays inside a transaction,
 * and put_command and put_events refuse to write into it (see sb_store_settle). */
void sb_store_rollback(struct sb_store *st)
{
    if (!sqlite3_get_autocommit(st->db)) {
        int rc = sb_store_run(st->stmt[S_ROLLBACK]);
        if (rc != SQLITE_OK) {
            (void)sb_store_fail(st, rc, "rollback");
        }
    }
}

int sb_store_begin(struct sb_store *st)
{
    return sb_store_run(st->stmt[S_BEGIN]);
}

int sb_store_commit(struct sb_store *st)
{
    return sb_store_run(st->stmt[S_COMMIT]);
}

/* put_command's INSERT must run in its own implicit transaction, which SQLite commits when the
 * step returns DONE, and only if no other statement of the connection is still active;
 * put_events' BEGIN IMMEDIATE must not nest inside a flush's transaction. Every function resets
 * its statements and ends its transaction before unlocking; this checks it (every statement of
 * the connection, so both statement lists), and refuses to write into a transaction a failed
 * flush could not roll back. */
enum sb_err sb_store_settle(struct sb_store *st, const char *what)
{
    for (sqlite3_stmt *s = sqlite3_next_stmt(st->db, NULL); s; s = sqlite3_next_stmt(st->db, s)) {
        if (sqlite3_stmt_busy(s)) {
            sb_log(SB_LOG_ERROR, "store", "%s: statement left active: %s", what, sqlite3_sql(s));
            sb_store_finish(s);
        }
    }
    sb_store_rollback(st);
    return sqlite3_get_autocommit(st->db) ? SB_OK : SB_E_STORE;
}

/* ---- open and close ---- */

/* mkdir -p with mode 0700 for what it creates; an existing directory is left as it is. */
static enum sb_err make_dirs(const char *dir, char *why, size_t why_len)
{
    size_t len = strlen(dir);
    char *p = malloc(len + 1);
    enum sb_err err = SB_E_IO;
    struct stat sb;

    if (!p) {
        snprintf(why, why_len, "%s: out of memory", dir);
        return SB_E_NOMEM;
    }
    memcpy(p, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0') {
            continue;
        }
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            snprintf(why, why_len, "cannot create %s: %s", p, strerror(errno));
            goto out;
        }
        p[i] = c;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(why, why_len, "%s: not a directory", dir);
        goto out;
    }
    err = SB_OK;
out:
    free(p);
    return err;
}

/* One bridge a data directory: a second one would send every unfinished command again. The
 * flock goes with the process, kill -9 included, so there is never a stale lock to clean up. */
static enum sb_err lock_dir(struct sb_store *st, const char *dir, char *why, size_t why_len)
{
    size_t len = strlen(dir) + sizeof("/" LOCK_FILE);
    char *path = malloc(len);
    enum sb_err err = SB_OK;

    if (!path) {
        snprintf(why, why_len, "out of memory");
        return SB_E_NOMEM;
    }
    snprintf(path, len, "%s/%s", dir, LOCK_FILE);
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->lock_fd < 0) {
        snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
        err = SB_E_IO;
    } else if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            snprintf(why, why_len,
                     "%s is in use by another process (another sinch-bridge with the same "
                     "BRIDGE_DATA_DIR?)",
                     st->path);
        } else {
            snprintf(why, why_len, "cannot lock %s: %s", path, strerror(errno));
        }
        err = SB_E_STORE;
    }
    free(path);
    return err;
}

/* Reads one integer from a statement such as "PRAGMA user_version". */
static int query_int(sqlite3 *db, const char *sql, int64_t *v)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *v = sqlite3_column_int64(s, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(s);
    return rc;
}

/* Connection settings, set at every open (only journal_mode persists in the file). */
static int configure(sqlite3 *db, char *why, size_t why_len)
{
    sqlite3_stmt *s = NULL;
    int rc;

    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS); /* only another process can hold a lock */
    /* 1 KiB pages, before the first access to the file: a commit writes each page it changed to
     * the WAL, and put_command's row is a few hundred bytes; 4 KiB pages made each commit write
     * four times the bytes. A file created with another page size keeps it (changing it needs a
     * VACUUM outside WAL). The locking mode stays NORMAL, although EXCLUSIVE saved each
     * transaction its fcntl() lock calls (about 6 us a put): the checkpointer needs a
     * connection of its own (store_checkpoint.c). One bridge a directory is the lock file's
     * job (lock_dir()). */
    rc = sqlite3_exec(db, "PRAGMA page_size=1024;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        return rc;
    }
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const char *mode = (const char *)sqlite3_column_text(s, 0);
            rc = mode && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_ERROR;
            if (rc != SQLITE_OK) {
                snprintf(why, why_len, "journal_mode is %s, not wal", mode ? mode : "?");
                sqlite3_finalize(s);
                return rc;
            }
        }
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_OK) {
        return rc;
    }
    /* NORMAL in WAL mode: a commit is in the WAL file (the OS's page cache) when step returns,
     * so it survives a process crash or kill -9; only a checkpoint fsyncs, on the
     * checkpointer's thread. Surviving power loss or a kernel crash too would need
     * synchronous=FULL (an fsync every commit). */
    return sqlite3_exec(db,
                        "PRAGMA synchronous=NORMAL;"
                        "PRAGMA foreign_keys=OFF;"
                        /* when the WAL starts over, its file is cut back to 4 MiB */
                        "PRAGMA journal_size_limit=4194304;",
                        NULL, NULL, NULL);
}

/* The depth counter and the highest seq, once at open: the one count that walks the table. */
static int count_commands(struct sb_store *st)
{
    int rc = query_int(st->db, "SELECT count(*) FROM commands WHERE state < 2", &st->unfinished);

    if (rc == SQLITE_OK) {
        rc = query_int(st->db, "SELECT coalesce(max(seq), 0) FROM commands", &st->max_seq);
    }
    return rc;
}

static int migrate(sqlite3 *db, char *why, size_t why_len)
{
    int64_t version = 0;
    int rc = query_int(db, "PRAGMA user_version", &version);

    if (rc != SQLITE_OK || version == SCHEMA_VERSION) {
        return rc;
    }
    if (version < 0 || version > SCHEMA_VERSION) {
        snprintf(why, why_len, "schema version %lld is not one this build knows (%d)",
                 (long long)version, SCHEMA_VERSION);
        return SQLITE_ERROR;
    }
    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        return rc;
    }
    /* Read again inside the write lock: another process may have migrated meanwhile. */
    rc = query_int(db, "PRAGMA user_version", &version);
    for (; rc == SQLITE_OK && version < SCHEMA_VERSION; version++) {
        rc = sqlite3_exec(db, migrations[version], NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", SCHEMA_VERSION);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(db)) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

static void free_ops(struct sb_store *st, size_t from)
{
    for (size_t i = from; i < st->nops; i++) {
        free(st->ops[i].buf);
    }
}

static void destroy(struct sb_store *st)
{
    sb_store_ckpt_stop(st);
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(st->stmt[i]);
    }
    for (int i = 0; i < I_COUNT; i++) {
        sqlite3_finalize(st->istmt[i]);
    }
    if (st->db && sqlite3_close(st->db) != SQLITE_OK) {
        sb_log(SB_LOG_ERROR, "store", "close %s: %s", st->path, sqlite3_errmsg(st->db));
        sqlite3_close_v2(st->db);
    }
    if (st->lock_fd >= 0) {
        close(st->lock_fd); /* and with it the flock */
    }
    free_ops(st, 0);
    free(st->ops);
    free(st->path);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

enum sb_err sb_store_open(const char *dir, struct sb_store **out, char *why, size_t why_len)
{
    char scratch[1];
    char *why_buf = why && why_len ? why : scratch;
    size_t why_cap = why && why_len ? why_len : sizeof(scratch);
    struct sb_store *st = NULL;
    pthread_mutexattr_t attr;
    enum sb_err err = SB_E_INVAL;
    size_t len;
    int rc;

    why_buf[0] = '\0';
    if (!out) {
        return SB_E_INVAL;
    }
    *out = NULL;
    if (!dir || !*dir) {
        snprintf(why_buf, why_cap, "no data dir given");
        return SB_E_INVAL;
    }
    if (!sqlite3_threadsafe()) {
        snprintf(why_buf, why_cap, "libsqlite3 was built without thread support");
        return SB_E_STORE;
    }
    st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(why_buf, why_cap, "out of memory");
        return SB_E_NOMEM;
    }
    st->lock_fd = -1;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    rc = pthread_mutex_init(&st->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        free(st);
        snprintf(why_buf, why_cap, "pthread_mutex_init failed (%d)", rc);
        return SB_E_NOMEM;
    }
    len = strlen(dir) + sizeof("/" DB_FILE);
    st->path = malloc(len);
    if (!st->path) {
        snprintf(why_buf, why_cap, "out of memory");
        err = SB_E_NOMEM;
        goto out;
    }
    snprintf(st->path, len, "%s/%s", dir, DB_FILE);
    err = make_dirs(dir, why_buf, why_cap);
    if (err == SB_OK) {
        err = lock_dir(st, dir, why_buf, why_cap);
    }
    if (err != SB_OK) {
        goto out;
    }
    err = SB_E_STORE;
    rc = sqlite3_open_v2(st->path, &st->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        rc = configure(st->db, why_buf, why_cap);
    }
    if (rc == SQLITE_OK) {
        rc = migrate(st->db, why_buf, why_cap);
    }
    for (int i = 0; rc == SQLITE_OK && i < S_COUNT; i++) {
        rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                                NULL);
    }
    for (int i = 0; rc == SQLITE_OK && i < I_COUNT; i++) {
        rc = sqlite3_prepare_v3(st->db, sb_store_inbox_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &st->istmt[i], NULL);
    }
    if (rc == SQLITE_OK) {
        rc = count_commands(st);
    }
    if (rc != SQLITE_OK) {
        if ((rc & 0xff) == SQLITE_BUSY) {
            snprintf(why_buf, why_cap, "%s is locked by another program (the sqlite3 shell?)",
                     st->path);
        } else if (why_buf[0] == '\0') {
            snprintf(why_buf, why_cap, "%s: %s", st->path,
                     st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        } else {
            char reason[256];
            snprintf(reason, sizeof(reason), "%s", why_buf);
            snprintf(why_buf, why_cap, "%s: %s", st->path, reason);
        }
        if ((rc & 0xff) == SQLITE_NOMEM) {
            err = SB_E_NOMEM;
        }
        goto out;
    }
    err = sb_store_ckpt_start(st, why_buf, why_cap);
    if (err != SB_OK) {
        goto out;
    }
    *out = st;
    st = NULL;
out:
    if (st) {
        destroy(st);
    }
    return err;
}

void sb_store_close(struct sb_store *st)
{
    if (!st) {
        return;
    }
    if (st->nops && sb_store_flush(st) != SB_OK) {
        sb_log(SB_LOG_ERROR, "store",
               "close: %zu staged writes lost; their commands and events are redone after restart",
               st->nops);
    }
    destroy(st);
}

/* ---- the hot path: paho's receive thread ---- */

enum sb_err sb_store_put_command(struct sb_store *st, const struct sb_store_command *cmd,
                                 int64_t *seq)
{
    sqlite3_stmt *s;
    enum sb_err err;
    int rc;

    if (!st || !cmd || !seq || !cmd->topic || !cmd->gen_id || (!cmd->payload && cmd->payload_len) ||
        cmd->payload_len > INT_MAX || (!cmd->correlation && cmd->correlation_len) ||
        cmd->correlation_len > INT_MAX) {
        return SB_E_INVAL;
    }
    err = sb_store_lock(st, "put");
    if (err != SB_OK) {
        return err;
    }
    err = sb_store_settle(st, "put");
    if (err != SB_OK) {
        sb_store_unlock(st);
        return err;
    }
    s = st->stmt[S_PUT];
    sqlite3_bind_int64(s, 1, cmd->received_ms);
    sqlite3_bind_text(s, 2, cmd->topic, -1, SQLITE_STATIC);
    if (cmd->payload_len) {
        sqlite3_bind_blob(s, 3, cmd->payload, (int)cmd->payload_len, SQLITE_STATIC);
    } else {
        sqlite3_bind_zeroblob(s, 3, 0); /* a NULL pointer would bind NULL */
    }
    sb_store_bind_text(s, 4, cmd->response_topic);
    if (!cmd->correlation) {
        sqlite3_bind_null(s, 5);
    } else if (cmd->correlation_len) {
        sqlite3_bind_blob(s, 5, cmd->correlation, (int)cmd->correlation_len, SQLITE_STATIC);
    } else {
        sqlite3_bind_zeroblob(s, 5, 0);
    }
    sqlite3_bind_text(s, 6, cmd->gen_id, -1, SQLITE_STATIC);
    rc = sb_store_run(s);
    if (rc == SQLITE_OK) {
        *seq = sqlite3_last_insert_rowid(st->db);
        st->max_seq = *seq;
        st->unfinished++;
    } else {
        err = sb_store_fail(st, rc, "put command from %s (id %s)", cmd->topic, cmd->gen_id);
    }
    sb_store_unlock(st);
    return err;
}

/* ---- loading ---- */

/* Column text or blob; "" for an empty one, so a row never has a NULL payload. */
static const void *col_blob(sqlite3_stmt *s, int i, size_t *len)
{
    const void *p;

    if (sqlite3_column_type(s, i) == SQLITE_NULL) {
        *len = 0;
        return NULL;
    }
    p = sqlite3_column_blob(s, i);
    *len = (size_t)sqlite3_column_bytes(s, i);
    return p ? p : "";
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

/* The callback runs under the lock: the SELECT stays active until it is reset, and while any
 * statement is active SQLite would not commit put_command's INSERT. So a callback must not call
 * the store (the error-checking lock makes that fail with SB_E_BUG); staging is fine. */
enum sb_err sb_store_load_unfinished(struct sb_store *st, int64_t after, size_t max,
                                     sb_store_command_fn fn, void *arg, int64_t *through)
{
    sqlite3_stmt *s;
    enum sb_err err;
    size_t n = 0;
    int64_t last = after;
    int rc;

    if (!st || !fn || !through) {
        return SB_E_INVAL;
    }
    *through = after;
    if (max == 0) {
        return SB_OK;
    }
    err = sb_store_lock(st, "load");
    if (err != SB_OK) {
        return err;
    }
    s = st->stmt[S_LOAD];
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct sb_store_command row;
        size_t len;
        row.seq = sqlite3_column_int64(s, 0);
        row.received_ms = sqlite3_column_int64(s, 1);
        row.topic = col_text(s, 2);
        row.payload = col_blob(s, 3, &len);
        row.payload_len = len;
        row.response_topic = col_text(s, 4);
        row.correlation = col_blob(s, 5, &len);
        row.correlation_len = len;
        row.gen_id = col_text(s, 6);
        row.state = (enum sb_store_state)sqlite3_column_int(s, 7);
        row.attempts = sqlite3_column_int(s, 8);
        row.outcome_topic = col_text(s, 9);
        row.outcome = col_text(s, 10);
        if (!row.topic || !row.payload || !row.gen_id) {
            rc = SQLITE_NOMEM; /* a NULL from a NOT NULL column: the conversion ran out */
            break;
        }
        fn(arg, &row);
        last = row.seq;
        n++;
    }
    if (rc == SQLITE_DONE) {
        /* A short load walked to the end of the table, which put_command cannot extend while
         * we hold the lock: every row up to max_seq has been looked at. */
        *through = n < max && st->max_seq > last ? st->max_seq : last;
    } else {
        err = sb_store_fail(st, rc, "load unfinished after seq %lld", (long long)after);
    }
    sb_store_finish(s);
    sb_store_unlock(st);
    return err;
}

/* ---- staged writes (loop thread) ---- */

/* Copies the op's strings into one allocation and appends it.
 * Shortcut: when memory runs out the op is dropped with an error line. That loses no command:
 * a dropped OUTCOME leaves the row PENDING (sent again after a restart), a dropped DONE leaves
 * it OUTCOME (published again), a dropped ATTEMPT undercounts attempts. The proper fix is to
 * reserve the op's memory before the request is made, so that staging cannot fail. */
static void stage(struct sb_store *st, struct sb_store_op *op)
{
    size_t lens[STR_COUNT];
    size_t total = 0;
    char *p;

    for (int i = 0; i < STR_COUNT; i++) {
        lens[i] = op->s[i] ? strlen(op->s[i]) + 1 : 0;
        total += lens[i];
    }
    if (st->nops == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : STAGE_FIRST_SIZE;
        struct sb_store_op *ops = realloc(st->ops, cap * sizeof(*ops));
        if (!ops) {
            goto oom;
        }
        st->ops = ops;
        st->cap = cap;
    }
    op->buf = NULL;
    if (total) {
        op->buf = malloc(total);
        if (!op->buf) {
            goto oom;
        }
    }
    p = op->buf;
    for (int i = 0; i < STR_COUNT; i++) {
        if (op->s[i]) {
            memcpy(p, op->s[i], lens[i]);
            op->s[i] = p;
            p += lens[i];
        }
    }
    st->ops[st->nops++] = *op;
    return;
oom:
    sb_log(SB_LOG_ERROR, "store",
           "seq %lld: out of memory, staged write %d dropped (it may be repeated after restart)",
           (long long)op->seq, (int)op->type);
}

void sb_store_stage_attempt(struct sb_store *st, int64_t seq, const char *cmd_id,
                            const char *recipient, int attempts, int64_t handed_ms)
{
    struct sb_store_op op = {.type = OP_ATTEMPT, .seq = seq, .ms = handed_ms, .attempts = attempts};

    if (!st) {
        return;
    }
    op.s[STR_CMD_ID] = cmd_id;
    op.s[STR_RECIPIENT] = recipient;
    stage(st, &op);
}

void sb_store_stage_outcome(struct sb_store *st, int64_t seq, const char *cmd_id,
                            const char *recipient, const char *channel, const char *message_id,
                            const char *status, int attempts, const char *outcome_topic,
                            const char *outcome)
{
    struct sb_store_op op = {.type = OP_OUTCOME, .seq = seq, .attempts = attempts};

    if (!st) {
        return;
    }
    op.s[STR_CMD_ID] = cmd_id;
    op.s[STR_RECIPIENT] = recipient;
    op.s[STR_CHANNEL] = channel;
    op.s[STR_MESSAGE_ID] = message_id;
    op.s[STR_STATUS] = status;
    op.s[STR_OUTCOME_TOPIC] = outcome_topic;
    op.s[STR_OUTCOME] = outcome;
    stage(st, &op);
}

void sb_store_stage_done(struct sb_store *st, int64_t seq, int64_t now_ms)
{
    struct sb_store_op op = {.type = OP_DONE, .seq = seq, .ms = now_ms};

    if (!st) {
        return;
    }
    stage(st, &op);
}

void sb_store_stage_inbox_done(struct sb_store *st, int64_t seq)
{
    struct sb_store_op op = {.type = OP_INBOX_DONE, .seq = seq};

    if (!st) {
        return;
    }
    stage(st, &op);
}

size_t sb_store_staged(const struct sb_store *st)
{
    return st ? st->nops : 0;
}

static int apply(struct sb_store *st, const struct sb_store_op *op)
{
    sqlite3_stmt *s = NULL;
    int rc;

    switch (op->type) {
    case OP_ATTEMPT:
        s = st->stmt[S_ATTEMPT];
        sqlite3_bind_int(s, 2, op->attempts);
        sb_store_bind_text(s, 3, op->s[STR_CMD_ID]);
        sb_store_bind_text(s, 4, op->s[STR_RECIPIENT]);
        sqlite3_bind_int64(s, 5, op->ms);
        break;
    case OP_OUTCOME:
        s = st->stmt[S_OUTCOME];
        sqlite3_bind_int(s, 2, op->attempts);
        for (int i = STR_CMD_ID; i <= STR_OUTCOME; i++) {
            sb_store_bind_text(s, 3 + i, op->s[i]);
        }
        break;
    case OP_DONE:
        s = st->stmt[S_DONE];
        sqlite3_bind_int64(s, 2, op->ms);
        sqlite3_bind_int64(s, 1, op->seq);
        rc = sb_store_run(s);
        if (rc == SQLITE_OK) {
            st->done_applied += sqlite3_changes(st->db); /* 0 for a row finished before */
        }
        return rc;
    case OP_INBOX_DONE:
        s = st->istmt[I_INBOX_DONE];
        break;
    }
    sqlite3_bind_int64(s, 1, op->seq);
    return sb_store_run(s);
}

/* Applies ops[0..nops) in order; on failure *at is the index of the one that failed. */
static int apply_all(struct sb_store *st, size_t *at)
{
    int rc = SQLITE_OK;

    st->done_applied = 0;
    for (*at = 0; *at < st->nops; (*at)++) {
        rc = apply(st, &st->ops[*at]);
        if (rc != SQLITE_OK) {
            break;
        }
    }
    return rc;
}

static long long op_seq(const struct sb_store *st, size_t i)
{
    return i < st->nops ? (long long)st->ops[i].seq : -1LL;
}

int sb_store_apply_staged(struct sb_store *st, bool *applied)
{
    size_t at = 0;
    int rc;

    *applied = false;
    if (st->nops == 0) {
        return SQLITE_OK;
    }
    rc = sb_store_run(st->stmt[S_SAVEPOINT]);
    if (rc != SQLITE_OK) {
        return SQLITE_OK; /* nothing done: they stay staged */
    }
    rc = apply_all(st, &at);
    if (rc == SQLITE_OK) {
        *applied = true;
    } else {
        (void)sb_store_fail(st, rc, "staged write for seq %lld (%zu staged writes kept)",
                            op_seq(st, at), st->nops);
        rc = sb_store_run(st->stmt[S_ROLLBACK_TO]);
    }
    /* RELEASE ends the savepoint (after ROLLBACK TO, with nothing of it left). */
    if (rc == SQLITE_OK) {
        rc = sb_store_run(st->stmt[S_RELEASE]);
    }
    return rc;
}

void sb_store_staged_committed(struct sb_store *st)
{
    st->unfinished -= st->done_applied;
    st->done_applied = 0;
    free_ops(st, 0);
    st->nops = 0;
}

enum sb_err sb_store_flush(struct sb_store *st)
{
    enum sb_err err;
    size_t i = 0;
    int rc;

    if (!st) {
        return SB_E_INVAL;
    }
    if (st->nops == 0) {
        return SB_OK;
    }
    err = sb_store_lock(st, "flush");
    if (err != SB_OK) {
        return err;
    }
    rc = sb_store_begin(st);
    if (rc != SQLITE_OK) {
        err = sb_store_fail(st, rc, "flush: begin (%zu staged writes kept)", st->nops);
        goto out;
    }
    rc = apply_all(st, &i);
    if (rc == SQLITE_OK) {
        rc = sb_store_commit(st);
    }
    if (rc != SQLITE_OK) {
        err = sb_store_fail(st, rc, "flush: seq %lld (%zu staged writes kept)", op_seq(st, i),
                            st->nops);
        sb_store_rollback(st);
        goto out;
    }
    sb_store_staged_committed(st);
out:
    sb_store_unlock(st);
    return err;
}

/* ---- dedupe, prune, queries (loop thread, depth any) ---- */

enum sb_err sb_store_dedupe_claim(struct sb_store *st, const char *key, int64_t seq, int64_t now_ms,
                                  int64_t window_ms, bool *duplicate)
{
    sqlite3_stmt *s;
    enum sb_err err;
    bool claim = true;
    int64_t until;
    int rc;

    if (!st || !key || !duplicate || window_ms < 0) {
        return SB_E_INVAL;
    }
    *duplicate = false;
    until = now_ms > INT64_MAX - window_ms ? INT64_MAX : now_ms + window_ms;
    err = sb_store_lock(st, "dedupe");
    if (err != SB_OK) {
        return err;
    }
    rc = sb_store_begin(st);
    if (rc == SQLITE_OK) {
        s = st->stmt[S_DEDUPE_GET];
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            int64_t holder = sqlite3_column_int64(s, 0);
            int64_t held_until = sqlite3_column_int64(s, 1);
            if (held_until > now_ms) {
                claim = false; /* unexpired: keep the first claim's window */
                *duplicate = holder != seq;
            }
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_OK;
        }
        sb_store_finish(s);
    }
    if (rc == SQLITE_OK && claim) {
        s = st->stmt[S_DEDUPE_SET];
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, seq);
        sqlite3_bind_int64(s, 3, until);
        rc = sb_store_run(s);
    }
    if (rc == SQLITE_OK) {
        rc = sb_store_commit(st);
    }
    if (rc != SQLITE_OK) {
        *duplicate = false;
        err = sb_store_fail(st, rc, "dedupe claim for seq %lld", (long long)seq);
        sb_store_rollback(st);
    }
    sb_store_unlock(st);
    return err;
}

/* Deletes in batches of PRUNE_BATCH, taking the lock for each, so that a large prune does not
 * hold up put_command (and the broker's PUBACK) for long. Two clocks: history (finished commands,
 * delivery statuses, inbound messages) goes by before_ms; what carries its own expiry (dedupe
 * claims, event keys) goes once that expiry is reached at now_ms, so a key lives exactly as long as
 * put_event's caller asked. An expired claim left in the table is harmless: claim treats it as
 * absent. */
enum sb_err sb_store_prune(struct sb_store *st, int64_t before_ms, int64_t now_ms)
{
    struct {
        sqlite3_stmt *s;
        int64_t limit;
    } which[5];
    enum sb_err err = SB_OK;

    if (!st) {
        return SB_E_INVAL;
    }
    which[0].s = st->stmt[S_PRUNE_COMMANDS];
    which[0].limit = before_ms;
    which[1].s = st->stmt[S_PRUNE_DEDUPE];
    which[1].limit = now_ms;
    which[2].s = st->istmt[I_PRUNE_KEYS];
    which[2].limit = now_ms;
    which[3].s = st->istmt[I_PRUNE_STATUS];
    which[3].limit = before_ms;
    which[4].s = st->istmt[I_PRUNE_MESSAGES_IN];
    which[4].limit = before_ms;
    for (size_t w = 0; w < sizeof(which) / sizeof(which[0]) && err == SB_OK; w++) {
        int changes;
        do {
            sqlite3_stmt *s = which[w].s;
            int rc;
            err = sb_store_lock(st, "prune");
            if (err != SB_OK) {
                return err;
            }
            sqlite3_bind_int64(s, 1, which[w].limit);
            sqlite3_bind_int(s, 2, PRUNE_BATCH);
            rc = sb_store_run(s);
            changes = rc == SQLITE_OK ? sqlite3_changes(st->db) : 0;
            if (rc != SQLITE_OK) {
                err = sb_store_fail(st, rc, "prune (%lld at %lld)", (long long)which[w].limit,
                                    (long long)now_ms);
            }
            sb_store_unlock(st);
        } while (err == SB_OK && changes == PRUNE_BATCH);
    }
    return err;
}

enum sb_err sb_store_count(struct sb_store *st, sqlite3_stmt *s, int64_t *out, const char *what)
{
    enum sb_err err = SB_OK;
    int rc = sqlite3_step(s);

    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
    } else {
        err = sb_store_fail(st, rc, "%s", what);
    }
    sb_store_finish(s);
    return err;
}

enum sb_err sb_store_depth(struct sb_store *st, int64_t *depth)
{
    enum sb_err err;

    if (!st || !depth) {
        return SB_E_INVAL;
    }
    err = sb_store_lock(st, "depth");
    if (err == SB_OK) {
        *depth = st->unfinished;
        sb_store_unlock(st);
    }
    return err;
}

enum sb_err sb_store_count_handed(struct sb_store *st, const char *recipient, int64_t since_ms,
                                  int64_t *n)
{
    enum sb_err err;

    if (!st || !recipient || !n) {
        return SB_E_INVAL;
    }
    err = sb_store_lock(st, "count handed");
    if (err == SB_OK) {
        sqlite3_stmt *s = st->stmt[S_COUNT_HANDED];
        sqlite3_bind_text(s, 1, recipient, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, since_ms);
        err = sb_store_count(st, s, n, "count handed");
        sb_store_unlock(st);
    }
    return err;
}

/* strdup of a column that may be NULL; false when memory ran out. */
static bool dup_col(sqlite3_stmt *s, int i, char **out)
{
    const char *v = col_text(s, i);

    *out = NULL;
    if (!v) {
        return sqlite3_column_type(s, i) == SQLITE_NULL;
    }
    *out = strdup(v);
    return *out != NULL;
}

enum sb_err sb_store_lookup_message(struct sb_store *st, const char *message_id, char **cmd_id,
                                    char **recipient)
{
    sqlite3_stmt *s;
    enum sb_err err;
    int rc;

    if (cmd_id) {
        *cmd_id = NULL;
    }
    if (recipient) {
        *recipient = NULL;
    }
    if (!st || !message_id || !cmd_id || !recipient) {
        return SB_E_INVAL;
    }
    err = sb_store_lock(st, "lookup");
    if (err != SB_OK) {
        return err;
    }
    s = st->stmt[S_LOOKUP];
    sqlite3_bind_text(s, 1, message_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (!dup_col(s, 0, cmd_id) || !dup_col(s, 1, recipient)) {
            free(*cmd_id);
            *cmd_id = NULL;
            err = SB_E_NOMEM;
        }
    } else if (rc != SQLITE_DONE) {
        err = sb_store_fail(st, rc, "lookup message %s", message_id);
    }
    sb_store_finish(s);
    sb_store_unlock(st);
    return err;
}
