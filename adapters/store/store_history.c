/* The history request (P/bridge/request/history): the last messages to and from one contact,
 * newest first, each command with its latest delivery status; and the count of messages sent
 * today. Both are rare (a request, a health publish), so their statements are prepared per call
 * instead of at open. Every query here reads through an index: commands_handed (recipient,
 * handed_ms), messages_in_contact (contact, received_ms), commands_finished (finished_ms). */
#include <sqlite3.h>

#include "adapters/store.h"
#include "adapters/store_internal.h"

/* Each half keeps its own newest `limit` rows before the merge, so the sort never sees more
 * than twice the limit. A command's status is the newest delivery report's when there is one
 * (the highest rank; message_status keeps one row per channel), else its outcome's. */
static const char history_sql[] =
    "SELECT * FROM ("
    " SELECT 0, handed_ms AS at, payload, cmd_id, channel, message_id,"
    "  COALESCE((SELECT m.status FROM message_status m WHERE m.message_id = c.message_id"
    "            ORDER BY m.rank DESC, m.updated_ms DESC LIMIT 1), c.status)"
    " FROM commands c WHERE recipient = ?1 AND handed_ms IS NOT NULL"
    " ORDER BY handed_ms DESC LIMIT ?2)"
    " UNION ALL SELECT * FROM ("
    " SELECT 1, received_ms AS at, payload, NULL, NULL, NULL, NULL"
    " FROM messages_in WHERE contact = ?1 ORDER BY received_ms DESC LIMIT ?2)"
    " ORDER BY at DESC LIMIT ?2";

enum sb_err sb_store_history(struct sb_store *st, const char *contact, int limit,
                             sb_store_history_fn fn, void *arg)
{
    sqlite3_stmt *s = NULL;
    enum sb_err err;
    int rc;

    if (!st || !contact || !fn || limit < 0) {
        return SB_E_INVAL;
    }
    err = sb_store_lock(st, "history");
    if (err != SB_OK) {
        return err;
    }
    rc = sqlite3_prepare_v2(st->db, history_sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, contact, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, limit);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            struct sb_store_history_row row = {
                .inbound = sqlite3_column_int(s, 0) != 0,
                .at_ms = sqlite3_column_int64(s, 1),
                .payload = sqlite3_column_blob(s, 2),
                .payload_len = (size_t)sqlite3_column_bytes(s, 2),
                .cmd_id = (const char *)sqlite3_column_text(s, 3),
                .channel = (const char *)sqlite3_column_text(s, 4),
                .message_id = (const char *)sqlite3_column_text(s, 5),
                .status = (const char *)sqlite3_column_text(s, 6),
            };
            fn(arg, &row);
        }
    }
    if (rc != SQLITE_DONE) {
        err = sb_store_fail(st, rc, "history of %s", contact);
    }
    sqlite3_finalize(s);
    sb_store_unlock(st);
    return err;
}

enum sb_err sb_store_count_sent_since(struct sb_store *st, int64_t since_ms, int64_t *count)
{
    static const char sql[] = "SELECT count(*) FROM commands"
                              " WHERE state = 2 AND finished_ms >= ?1 AND status = 'ACCEPTED'";
    sqlite3_stmt *s = NULL;
    enum sb_err err;
    int rc;

    if (!st || !count) {
        return SB_E_INVAL;
    }
    err = sb_store_lock(st, "count sent");
    if (err != SB_OK) {
        return err;
    }
    rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, since_ms);
        err = sb_store_count(st, s, count, "count sent");
    } else {
        err = sb_store_fail(st, rc, "count sent");
    }
    sqlite3_finalize(s);
    sb_store_unlock(st);
    return err;
}
