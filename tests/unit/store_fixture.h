/* What the store's unit tests share: a scratch directory per case, and a second SQLite
 * connection to look at (or tamper with) what the store wrote. Included by the test_store*.c
 * files only; the helpers are inline so that a test need not use every one. */
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
#include "check.h"

static char root[64]; /* the test's scratch directory, made by main() */

/* A fresh directory under the test's root for each case. */
static inline void case_dir(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", root, name);
}

static inline void db_path(char *buf, size_t len, const char *dir)
{
    snprintf(buf, len, "%s/sinch-bridge.db", dir);
}

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

/* Runs SQL on a second connection, creating the file when `create`. */
static inline int raw_exec_mode(const char *dir, const char *sql, int flags)
{
    char path[256];
    sqlite3 *db = NULL;
    int rc;

    db_path(path, sizeof(path), dir);
    rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return rc;
}

/* Runs SQL on a second connection (as an operator with the sqlite3 shell would). */
static inline int raw_exec(const char *dir, const char *sql)
{
    return raw_exec_mode(dir, sql, SQLITE_OPEN_READWRITE);
}

/* One integer from a second connection; -1 on error. */
static inline int64_t raw_int(const char *dir, const char *sql)
{
    char path[256];
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int64_t v = -1;

    db_path(path, sizeof(path), dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static inline struct sb_store *open_ok(const char *dir)
{
    struct sb_store *st = NULL;
    char why[256];
    enum sb_err err = sb_store_open(dir, &st, why, sizeof(why));

    CHECKF(err == SB_OK && st != NULL, "open %s: %s: %s", dir, sb_err_name(err), why);
    return st;
}

#endif
