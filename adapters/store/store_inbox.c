/* The store's inbound half (issue 3): webhook events are stored, with their dedupe key, before
 * the listener answers 200, then published from the inbox and deleted once the broker
 * acknowledged them. Also the delivery rank per message (a status never moves backwards) and
 * the last inbound time per contact. Thread: loop, except sb_store_inbox_depth (any).
 * The tables are schema v2 in store.c; the connection, lock and staging are store.c's too. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "adapters/store.h"
#include "adapters/store_internal.h"

/* Prepared by sb_store_open() with store.c's own; reset after every use. */
const char *const sb_store_inbox_sql[I_COUNT] = {
    /* OR IGNORE: a key seen before changes nothing, and its first until_ms stays. */
    [I_KEY_PUT] = "INSERT OR IGNORE INTO event_keys(key, until_ms) VALUES (?1, ?2)",
    [I_STATUS_GET] = "SELECT rank FROM message_status WHERE message_id = ?1 AND channel = ?2",
    [I_STATUS_SET] = "INSERT OR REPLACE INTO message_status(message_id, channel, rank, updated_ms,"
                     " status) VALUES (?1, ?2, ?3, ?4, ?5)",
    [I_INBOX_PUT] = "INSERT INTO inbox(received_ms, topic, payload, message_in)"
                    " VALUES (?1, ?2, ?3, ?4)",
    /* max(): webhooks may arrive out of order, so an older message never moves the time back. */
    [I_CONTACT_SET] = "INSERT INTO contacts(identity, last_inbound_ms) VALUES (?1, ?2)"
                      " ON CONFLICT(identity) DO UPDATE"
                      " SET last_inbound_ms = max(last_inbound_ms, excluded.last_inbound_ms)",
    /* An inbound message's payload is its history row's (schema v5). */
    [I_INBOX_LOAD] = "SELECT i.seq, i.topic, coalesce(m.payload, i.payload) FROM inbox i"
                     " LEFT JOIN messages_in m ON m.seq = i.message_in"
                     " WHERE i.seq > ?1 ORDER BY i.seq LIMIT ?2",
    [I_INBOX_DONE] = "DELETE FROM inbox WHERE seq = ?1",
    [I_INBOX_DEPTH] = "SELECT count(*) FROM inbox",
    [I_LAST_INBOUND] = "SELECT last_inbound_ms FROM contacts WHERE identity = ?1",
    /* ?1 of the two prunes: I_PRUNE_KEYS gets now, I_PRUNE_STATUS the history limit. */
    [I_PRUNE_KEYS] = "DELETE FROM event_keys WHERE key IN (SELECT key FROM event_keys"
                     " WHERE until_ms <= ?1 LIMIT ?2)",
    [I_PRUNE_STATUS] = "DELETE FROM message_status WHERE (message_id, channel) IN"
                       " (SELECT message_id, channel FROM message_status"
                       " WHERE updated_ms < ?1 LIMIT ?2)",
    [I_MESSAGE_IN_PUT] =
        "INSERT INTO messages_in(received_ms, contact, payload) VALUES (?1, ?2, ?3)",
    /* Not one whose inbox row still waits for the broker: it holds that row's payload. */
    [I_PRUNE_MESSAGES_IN] = "DELETE FROM messages_in WHERE seq IN (SELECT seq FROM messages_in"
                            " WHERE received_ms < ?1 AND seq NOT IN"
                            " (SELECT message_in FROM inbox WHERE message_in IS NOT NULL)"
                            " LIMIT ?2)",
};

/* The writes of one event, inside put_events' transaction. Returns the SQLite code; sets
 * ev->result and ev->seq. A duplicate or stale event returns before anything but the key is
 * written. */
static int write_event(struct sb_store *st, struct sb_store_event *ev)
{
    sqlite3_stmt *s = st->istmt[I_KEY_PUT];
    int64_t message_in = 0;
    int rc;

    sqlite3_bind_text(s, 1, ev->dedupe_key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, ev->keep_until_ms);
    rc = sb_store_run(s);
    if (rc != SQLITE_OK) {
        return rc;
    }
    if (sqlite3_changes(st->db) == 0) {
        ev->result = SB_STORE_EVENT_DUPLICATE;
        return SQLITE_OK;
    }
    /* Rank 0 (an unknown status) is always published and never stored: it cannot make a
     * known status stale, nor be made stale by one. */
    if (ev->message_id && ev->channel && ev->rank > 0) {
        int stored = 0;
        s = st->istmt[I_STATUS_GET];
        sqlite3_bind_text(s, 1, ev->message_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, ev->channel, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            stored = sqlite3_column_int(s, 0);
        }
        sb_store_finish(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            return rc;
        }
        if (ev->rank <= stored) {
            ev->result = SB_STORE_EVENT_STALE; /* the key stays: a redelivery is a duplicate */
            return SQLITE_OK;
        }
        s = st->istmt[I_STATUS_SET];
        sqlite3_bind_text(s, 1, ev->message_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, ev->channel, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 3, ev->rank);
        sqlite3_bind_int64(s, 4, ev->received_ms);
        sb_store_bind_text(s, 5, ev->status);
        rc = sb_store_run(s);
        if (rc != SQLITE_OK) {
            return rc;
        }
    }
    /* An inbound message's payload is written once, into its history row, and its inbox row
     * points there (schema v5): the payload is most of what a commit writes. */
    if (ev->contact) {
        s = st->istmt[I_CONTACT_SET];
        sqlite3_bind_text(s, 1, ev->contact, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, ev->received_ms);
        rc = sb_store_run(s);
        if (rc != SQLITE_OK) {
            return rc;
        }
        s = st->istmt[I_MESSAGE_IN_PUT];
        sqlite3_bind_int64(s, 1, ev->received_ms);
        sqlite3_bind_text(s, 2, ev->contact, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, ev->payload, -1, SQLITE_STATIC);
        rc = sb_store_run(s);
        if (rc != SQLITE_OK) {
            return rc;
        }
        message_in = sqlite3_last_insert_rowid(st->db);
    }
    s = st->istmt[I_INBOX_PUT];
    sqlite3_bind_int64(s, 1, ev->received_ms);
    sqlite3_bind_text(s, 2, ev->topic, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, message_in ? "" : ev->payload, -1, SQLITE_STATIC);
    if (message_in) {
        sqlite3_bind_int64(s, 4, message_in);
    } else {
        sqlite3_bind_null(s, 4);
    }
    rc = sb_store_run(s);
    if (rc != SQLITE_OK) {
        return rc;
    }
    ev->seq = sqlite3_last_insert_rowid(st->db);
    ev->result = SB_STORE_EVENT_STORED;
    return SQLITE_OK;
}

/* Nothing to publish: what a failed or refused batch reports for each of its events. */
static void forget(struct sb_store_event *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        evs[i].result = SB_STORE_EVENT_DUPLICATE;
        evs[i].seq = 0;
    }
}

static bool valid_event(const struct sb_store_event *ev)
{
    return ev->dedupe_key && ev->topic && ev->payload && ev->rank >= 0;
}

/* One BEGIN IMMEDIATE .. COMMIT under the lock for the whole batch, so each event's key, rank,
 * inbox row and contact are all kept or none is, and a burst of webhooks costs one commit: a
 * failure (a full disk) rolls every key back too, the listener answers 503, and Sinch's retries
 * are stored as new. sb_store_flush() runs its own transaction under the same lock and ends it
 * before unlocking, so the two never nest; settle checks it. */
enum sb_err sb_store_put_events(struct sb_store *st, struct sb_store_event *evs, size_t n)
{
    enum sb_err err;
    bool staged = false;
    size_t i = 0;
    int rc;

    if (!evs && n) {
        return SB_E_INVAL;
    }
    forget(evs, n); /* until the commit: nothing to publish */
    for (size_t k = 0; k < n; k++) {
        if (!valid_event(&evs[k])) {
            return SB_E_INVAL;
        }
    }
    if (!st) {
        return SB_E_INVAL;
    }
    if (n == 0) {
        return SB_OK;
    }
    err = sb_store_lock(st, "put events");
    if (err != SB_OK) {
        return err;
    }
    err = sb_store_settle(st, "put events");
    if (err != SB_OK) {
        goto out;
    }
    rc = sb_store_begin(st);
    for (; rc == SQLITE_OK && i < n; i++) {
        rc = write_event(st, &evs[i]);
    }
    /* The turn's other staged writes (outcomes, acknowledged inbox rows) ride along: one
     * commit a turn. Their own failure does not cost the events. */
    if (rc == SQLITE_OK) {
        rc = sb_store_apply_staged(st, &staged);
    }
    if (rc == SQLITE_OK) {
        rc = sb_store_commit(st); /* all duplicates: an empty transaction */
    }
    if (rc == SQLITE_OK && staged) {
        sb_store_staged_committed(st);
    }
    if (rc != SQLITE_OK) {
        const struct sb_store_event *at = &evs[i > 0 ? i - 1 : 0];
        err = sb_store_fail(st, rc, "put %zu events (at %s on %s)", n, at->dedupe_key, at->topic);
        sb_store_rollback(st);
        forget(evs, n);
    }
out:
    sb_store_unlock(st);
    return err;
}

enum sb_err sb_store_put_event(struct sb_store *st, const struct sb_store_event *ev,
                               enum sb_store_event_result *result)
{
    struct sb_store_event one;
    enum sb_err err;

    if (result) {
        *result = SB_STORE_EVENT_DUPLICATE; /* on failure: nothing to publish */
    }
    if (!st || !ev || !result) {
        return SB_E_INVAL;
    }
    one = *ev;
    err = sb_store_put_events(st, &one, 1);
    *result = one.result;
    return err;
}

/* Same rules as sb_store_load_unfinished(): fn runs under the lock with the SELECT active. */
enum sb_err sb_store_load_inbox(struct sb_store *st, int64_t after, size_t max,
                                sb_store_inbox_fn fn, void *arg)
{
    sqlite3_stmt *s;
    enum sb_err err;
    int rc;

    if (!st || !fn) {
        return SB_E_INVAL;
    }
    if (max == 0) {
        return SB_OK;
    }
    err = sb_store_lock(st, "load inbox");
    if (err != SB_OK) {
        return err;
    }
    s = st->istmt[I_INBOX_LOAD];
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, max > (size_t)INT64_MAX ? INT64_MAX : (int64_t)max);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct sb_store_inbox_row row;
        row.seq = sqlite3_column_int64(s, 0);
        row.topic = (const char *)sqlite3_column_text(s, 1);
        row.payload = (const char *)sqlite3_column_text(s, 2);
        if (!row.topic || !row.payload) {
            rc = SQLITE_NOMEM; /* a NULL from a NOT NULL column: the conversion ran out */
            break;
        }
        fn(arg, &row);
    }
    if (rc != SQLITE_DONE) {
        err = sb_store_fail(st, rc, "load inbox after seq %lld", (long long)after);
    }
    sb_store_finish(s);
    sb_store_unlock(st);
    return err;
}

enum sb_err sb_store_inbox_depth(struct sb_store *st, int64_t *depth)
{
    enum sb_err err;

    if (!st || !depth) {
        return SB_E_INVAL;
    }
    err = sb_store_lock(st, "inbox depth");
    if (err == SB_OK) {
        err = sb_store_count(st, st->istmt[I_INBOX_DEPTH], depth, "inbox depth");
        sb_store_unlock(st);
    }
    return err;
}

enum sb_err sb_store_last_inbound(struct sb_store *st, const char *contact, int64_t *when_ms)
{
    sqlite3_stmt *s;
    enum sb_err err;
    int rc;

    if (when_ms) {
        *when_ms = 0;
    }
    if (!st || !contact || !when_ms) {
        return SB_E_INVAL;
    }
    err = sb_store_lock(st, "last inbound");
    if (err != SB_OK) {
        return err;
    }
    s = st->istmt[I_LAST_INBOUND];
    sqlite3_bind_text(s, 1, contact, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *when_ms = sqlite3_column_int64(s, 0);
    } else if (rc != SQLITE_DONE) {
        err = sb_store_fail(st, rc, "last inbound of %s", contact);
    }
    sb_store_finish(s);
    sb_store_unlock(st);
    return err;
}
