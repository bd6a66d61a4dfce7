/* What the store's unit tests share: a scratch directory per case, and SQL of their own to look
 * at (or tamper with) what the store wrote. While a store opened by open_ok() is open the SQL
 * runs on that store's own connection, under its lock, so that it is ordered with the store's
 * own writes (and tampering inside its transactions works); otherwise on a second connection,
 * as an operator's sqlite3 shell would. So close a store with close_store(), which forgets it.
 * Included by the test_store*.c files only; the helpers are inline so that a test need not use
 * every one. */
#ifndef SB_TESTS_STORE_FIXTURE_H
#define SB_TESTS_STORE_FIXTURE_H

#include <dirent.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/store.h"
#include "adapters/store_internal.h"
#include "check.h"

static char root[64]; /* the test's scratch directory, made by main() */

static inline void db_path(char *buf, size_t len, const char *dir)
{
    snprintf(buf, len, "%s/sinch-bridge.db", dir);
}

/* The stores open_ok() opened and close_store() has not closed, by directory. */
#define OPEN_STORES_MAX 8
static struct {
    char dir[128];
    struct sb_store *st;
} open_stores[OPEN_STORES_MAX];

static inline struct sb_store *open_store_of(const char *dir)
{
    for (int i = 0; i < OPEN_STORES_MAX; i++) {
        if (open_stores[i].st && strcmp(open_stores[i].dir, dir) == 0) {
            return open_stores[i].st;
        }
    }
    return NULL;
}

static inline void close_store(struct sb_store *st)
{
    for (int i = 0; i < OPEN_STORES_MAX; i++) {
        if (st && open_stores[i].st == st) {
            open_stores[i].st = NULL;
        }
    }
    sb_store_close(st);
}

/* The connection to run test SQL on: the open store's (locked; give it back with
 * raw_db_done()) or a new one. NULL when the file cannot be opened. */
static inline sqlite3 *raw_db(const char *dir, int flags, struct sb_store **held)
{
    char path[256];
    sqlite3 *db = NULL;

    *held = open_store_of(dir);
    if (*held) {
        CHECK(sb_store_lock(*held, "test SQL") == SB_OK);
        return (*held)->db;
    }
    db_path(path, sizeof(path), dir);
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static inline void raw_db_done(sqlite3 *db, struct sb_store *held)
{
    if (held) {
        sb_store_unlock(held);
    } else {
        sqlite3_close(db);
    }
}

/* A fresh directory under the test's root for each case. */
static inline void case_dir(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", root, name);
}

/* NOLINTNEXTLINE(misc-no-recursion): one level a directory, and a test's tree is shallow */
static inline void rm_rf(const char *path)
{
    struct stat sb;
    DIR *d;

    if (lstat(path, &sb) != 0) {
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        unlink(path);
        return;
    }
    d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char sub[512];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            int n = snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            if (n > 0 && (size_t)n < sizeof(sub)) {
                rm_rf(sub);
            }
        }
        closedir(d);
    }
    rmdir(path);
}

/* Runs SQL (see raw_db()); `flags` open a second connection, SQLITE_OPEN_CREATE makes the file. */
static inline int raw_exec_mode(const char *dir, const char *sql, int flags)
{
    struct sb_store *held;
    sqlite3 *db = raw_db(dir, flags, &held);
    int rc = db ? sqlite3_exec(db, sql, NULL, NULL, NULL) : SQLITE_CANTOPEN;

    if (db) {
        raw_db_done(db, held);
    }
    return rc;
}

/* Runs SQL (see raw_db()). */
static inline int raw_exec(const char *dir, const char *sql)
{
    return raw_exec_mode(dir, sql, SQLITE_OPEN_READWRITE);
}

/* One integer (see raw_db()); -1 on error. */
static inline int64_t raw_int(const char *dir, const char *sql)
{
    struct sb_store *held;
    sqlite3 *db = raw_db(dir, SQLITE_OPEN_READONLY, &held);
    sqlite3_stmt *s = NULL;
    int64_t v = -1;

    if (!db) {
        return -1;
    }
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    raw_db_done(db, held);
    return v;
}

/* One text, copied into buf; "(null)" for NULL, "" on error (see raw_db()). */
static inline const char *raw_text(const char *dir, const char *sql, char *buf, size_t len)
{
    struct sb_store *held;
    sqlite3 *db = raw_db(dir, SQLITE_OPEN_READONLY, &held);
    sqlite3_stmt *s = NULL;

    buf[0] = '\0';
    if (!db) {
        return buf;
    }
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        snprintf(buf, len, "%s", v ? v : "(null)");
    }
    sqlite3_finalize(s);
    raw_db_done(db, held);
    return buf;
}

static inline struct sb_store *open_ok(const char *dir)
{
    struct sb_store *st = NULL;
    char why[256];
    enum sb_err err = sb_store_open(dir, &st, why, sizeof(why));

    CHECKF(err == SB_OK && st != NULL, "open %s: %s: %s", dir, sb_err_name(err), why);
    for (int i = 0; st && i < OPEN_STORES_MAX; i++) {
        if (!open_stores[i].st) {
            snprintf(open_stores[i].dir, sizeof(open_stores[i].dir), "%s", dir);
            open_stores[i].st = st;
            break;
        }
    }
    return st;
}

/* A simple command: a JSON payload naming i, gen id "g<i>". */
static inline enum sb_err put_simple(struct sb_store *st, int i, int64_t *seq)
{
    char payload[220];
    char gen[32];
    struct sb_store_command c = {0};
    int n;

    n = snprintf(payload, sizeof(payload), "{\"to\":\"+46700000000\",\"text\":\"message %d\"}", i);
    snprintf(gen, sizeof(gen), "g%d", i);
    c.received_ms = 1000 + i;
    c.topic = "sinch/send";
    c.payload = payload;
    c.payload_len = (size_t)n;
    c.gen_id = gen;
    return sb_store_put_command(st, &c, seq);
}

#endif
