/* Unit tests of the store's inbound half (adapters/store/store_inbox.c), on real files in a
 * mkdtemp directory: put_event's decisions (new, duplicate, stale) as a table, the same rules
 * inside one put_events batch, the inbox (load order, staged deletes, depth), last inbound
 * times, the v1 -> v2 migration, prune of keys and statuses, a full disk (the key is not kept;
 * a failed batch keeps nothing), a kill -9 right after put_event returns, and put_event on the
 * loop while paho's thread puts commands. */
#include "adapters/store.h"

#include <dirent.h>
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
#include <unistd.h>

#include "bridge/log.h"
#include "check.h"
#include "store_fixture.h"

/* An inbound message from `contact` (may be NULL for another trigger), key `key`. */
static enum sb_err put_inbound(struct sb_store *st, const char *key, const char *contact,
                               int64_t ms, enum sb_store_event_result *res)
{
    char topic[96];
    char payload[128];
    struct sb_store_event ev = {0};

    snprintf(topic, sizeof(topic), "sinch/inbound/whatsapp/%s", contact ? contact + 1 : "x");
    snprintf(payload, sizeof(payload), "{\"key\":\"%s\",\"ms\":%lld}", key, (long long)ms);
    ev.dedupe_key = key;
    ev.keep_until_ms = ms + 24LL * 3600 * 1000;
    ev.topic = topic;
    ev.payload = payload;
    ev.contact = contact;
    ev.received_ms = ms;
    return sb_store_put_event(st, &ev, res);
}

/* ---- inbox collector ---- */

#define MAX_ROWS 32

struct inbox_rows {
    int64_t seq[MAX_ROWS];
    char topic[MAX_ROWS][64];
    char payload[MAX_ROWS][128];
    size_t n;
    size_t total;
    struct sb_store *reenter; /* when set, the callback calls the store (must fail) */
    enum sb_err reenter_err;
    bool stage_done; /* when set, the callback stages each row's delete */
};

static void collect(void *arg, const struct sb_store_inbox_row *row)
{
    struct inbox_rows *r = arg;

    r->total++;
    if (r->reenter) {
        enum sb_store_event_result res;
        r->reenter_err = put_inbound(r->reenter, "reenter", NULL, 1, &res);
    }
    if (r->stage_done) {
        sb_store_stage_inbox_done(r->reenter ? r->reenter : NULL, row->seq);
    }
    if (r->n == MAX_ROWS) {
        return;
    }
    r->seq[r->n] = row->seq;
    snprintf(r->topic[r->n], sizeof(r->topic[0]), "%s", row->topic);
    snprintf(r->payload[r->n], sizeof(r->payload[0]), "%s", row->payload);
    r->n++;
}

static struct inbox_rows *load_all(struct sb_store *st, int64_t after, size_t max)
{
    static struct inbox_rows rows;

    memset(&rows, 0, sizeof(rows));
    CHECK(sb_store_load_inbox(st, after, max, collect, &rows) == SB_OK);
    return &rows;
}

/* ---- cases ---- */

/* put_event's decisions, one row at a time on one database. Ranks are sb_delivery_rank()'s:
 * 1 QUEUED_ON_CHANNEL, 2 DELIVERED, 3 READ / FAILED / SWITCHING_CHANNEL, 0 unknown. */
static void test_put_event_table(void)
{
    static const struct {
        const char *key;
        const char *message_id;
        const char *channel;
        int rank;
        const char *contact;
        enum sb_store_event_result want;
        const char *note;
    } rows[] = {
        {"e1", "M1", "WHATSAPP", 2, NULL, SB_STORE_EVENT_STORED, "DELIVERED"},
        {"e1", "M1", "WHATSAPP", 2, NULL, SB_STORE_EVENT_DUPLICATE, "the same event again"},
        {"e2", "M1", "WHATSAPP", 3, NULL, SB_STORE_EVENT_STORED, "READ after DELIVERED"},
        {"e3", "M1", "WHATSAPP", 2, NULL, SB_STORE_EVENT_STALE, "DELIVERED after READ"},
        {"e3", "M1", "WHATSAPP", 2, NULL, SB_STORE_EVENT_DUPLICATE, "a stale one's key stays"},
        {"e4", "M1", "WHATSAPP", 3, NULL, SB_STORE_EVENT_STALE, "same rank, another event"},
        {"e5", "M1", "WHATSAPP", 1, NULL, SB_STORE_EVENT_STALE, "QUEUED after READ"},
        {"e6", "M1", "WHATSAPP", 0, NULL, SB_STORE_EVENT_STORED, "unknown status: rank 0"},
        {"e7", "M1", "WHATSAPP", 0, NULL, SB_STORE_EVENT_STORED, "rank 0 again"},
        {"e8", "M2", "WHATSAPP", 3, NULL, SB_STORE_EVENT_STORED, "SWITCHING_CHANNEL"},
        {"e9", "M2", "SMS", 1, NULL, SB_STORE_EVENT_STORED, "QUEUED on the next channel"},
        {"e10", "M2", "SMS", 3, NULL, SB_STORE_EVENT_STORED, "FAILED on SMS"},
        {"e11", "M2", "SMS", 2, NULL, SB_STORE_EVENT_STALE, "DELIVERED on SMS after FAILED"},
        {"e12", "M2", "WHATSAPP", 3, NULL, SB_STORE_EVENT_STALE, "WHATSAPP's own order"},
        {"e13", NULL, NULL, 0, "+46700000001", SB_STORE_EVENT_STORED, "an inbound message"},
        {"e14", NULL, NULL, 0, NULL, SB_STORE_EVENT_STORED, "another trigger"},
        {"e15", "M3", NULL, 2, NULL, SB_STORE_EVENT_STORED, "no channel: not ranked"},
        {"e16", "M3", NULL, 1, NULL, SB_STORE_EVENT_STORED, "no channel: not ranked"},
        {"e16", "M4", "SMS", 1, NULL, SB_STORE_EVENT_DUPLICATE, "the key decides first"},
    };
    char dir[128];
    struct sb_store *st;
    size_t stored = 0;
    int64_t depth = -1;
    struct inbox_rows *got;

    case_dir(dir, sizeof(dir), "table");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char payload[64];
        struct sb_store_event ev = {0};
        enum sb_store_event_result res =
            rows[i].want == SB_STORE_EVENT_STORED ? SB_STORE_EVENT_STALE : SB_STORE_EVENT_STORED;
        enum sb_err err;
        snprintf(payload, sizeof(payload), "{\"row\":%zu}", i);
        ev.dedupe_key = rows[i].key;
        ev.keep_until_ms = 100000 + (int64_t)i;
        ev.topic = "sinch/delivery/whatsapp/46700000000";
        ev.payload = payload;
        ev.message_id = rows[i].message_id;
        ev.channel = rows[i].channel;
        ev.rank = rows[i].rank;
        ev.contact = rows[i].contact;
        ev.received_ms = 1000 + (int64_t)i;
        err = sb_store_put_event(st, &ev, &res);
        CHECKF(err == SB_OK && res == rows[i].want, "row %zu (%s): %s, result %d", i, rows[i].note,
               sb_err_name(err), (int)res);
        stored += rows[i].want == SB_STORE_EVENT_STORED;
    }
    CHECK(sb_store_inbox_depth(st, &depth) == SB_OK && depth == (int64_t)stored);
    /* The inbox holds exactly the STORED rows, in the order they came. */
    got = load_all(st, 0, MAX_ROWS);
    CHECK(got->n == stored);
    for (size_t i = 0, k = 0; i < sizeof(rows) / sizeof(rows[0]) && k < got->n; i++) {
        char want[64];
        if (rows[i].want != SB_STORE_EVENT_STORED) {
            continue;
        }
        snprintf(want, sizeof(want), "{\"row\":%zu}", i);
        CHECKF(strcmp(got->payload[k], want) == 0, "%s != %s", got->payload[k], want);
        CHECK(k == 0 || got->seq[k] > got->seq[k - 1]);
        k++;
    }
    CHECK(raw_int(dir, "SELECT rank FROM message_status WHERE message_id = 'M1'"
                       " AND channel = 'WHATSAPP'") == 3);
    CHECK(raw_int(dir, "SELECT rank FROM message_status WHERE message_id = 'M2'"
                       " AND channel = 'SMS'") == 3);
    CHECK(raw_int(dir, "SELECT count(*) FROM message_status") == 3);
    /* every key is kept, stale ones included; the first until_ms stays */
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys") == 16);
    CHECK(raw_int(dir, "SELECT until_ms FROM event_keys WHERE key = 'e1'") == 100000);

    /* Bad input. */
    {
        struct sb_store_event ok = {.dedupe_key = "k", .topic = "t", .payload = "{}"};
        struct sb_store_event ev;
        enum sb_store_event_result res = SB_STORE_EVENT_STORED;
        CHECK(sb_store_put_event(NULL, &ok, &res) == SB_E_INVAL);
        CHECK(res == SB_STORE_EVENT_DUPLICATE); /* reset: nothing to publish */
        CHECK(sb_store_put_event(st, NULL, &res) == SB_E_INVAL);
        CHECK(sb_store_put_event(st, &ok, NULL) == SB_E_INVAL);
        ev = ok;
        ev.dedupe_key = NULL;
        CHECK(sb_store_put_event(st, &ev, &res) == SB_E_INVAL);
        ev = ok;
        ev.topic = NULL;
        CHECK(sb_store_put_event(st, &ev, &res) == SB_E_INVAL);
        ev = ok;
        ev.payload = NULL;
        CHECK(sb_store_put_event(st, &ev, &res) == SB_E_INVAL);
        ev = ok;
        ev.rank = -1;
        CHECK(sb_store_put_event(st, &ev, &res) == SB_E_INVAL);
        CHECK(raw_int(dir, "SELECT count(*) FROM event_keys WHERE key = 'k'") == 0);
        CHECK(sb_store_put_event(st, &ok, &res) == SB_OK && res == SB_STORE_EVENT_STORED);
    }
    close_store(st);
}

/* ---- batches (put_events: one transaction for a loop turn's webhooks) ---- */

/* Fills ev as a delivery report (message_id set) or, without one, an inbound message. The
 * strings are borrowed from the caller's table. */
static void batch_event(struct sb_store_event *ev, const char *key, const char *message_id,
                        int rank, const char *payload, int64_t ms)
{
    *ev = (struct sb_store_event){
        .dedupe_key = key,
        .keep_until_ms = ms + 24LL * 3600 * 1000,
        .topic = message_id ? "sinch/delivery/whatsapp/46700000000"
                            : "sinch/inbound/whatsapp/46700000001",
        .payload = payload,
        .message_id = message_id,
        .channel = message_id ? "WHATSAPP" : NULL,
        .rank = rank,
        .contact = message_id ? NULL : "+46700000001",
        .received_ms = ms,
        /* what put_events must overwrite */
        .result = SB_STORE_EVENT_STALE,
        .seq = -7,
    };
}

/* One batch decides each event as put_event would one after the other: a second copy of an
 * event is a duplicate, a status after a higher one of its message is stale, and each stored
 * event gets its inbox seq, in order. Ranks: 1 QUEUED, 2 DELIVERED, 3 READ. */
static void test_batch_rules(void)
{
    static const struct {
        const char *key;
        const char *message_id; /* NULL: an inbound message */
        int rank;
        enum sb_store_event_result want;
        const char *note;
    } rows[] = {
        {"in-1", NULL, 0, SB_STORE_EVENT_STORED, "an inbound message"},
        {"in-1", NULL, 0, SB_STORE_EVENT_DUPLICATE, "its second copy, same batch"},
        {"d-1", "M1", 2, SB_STORE_EVENT_STORED, "DELIVERED"},
        {"r-1", "M1", 3, SB_STORE_EVENT_STORED, "then READ: both published, in order"},
        {"r-2", "M2", 3, SB_STORE_EVENT_STORED, "READ first"},
        {"d-2", "M2", 2, SB_STORE_EVENT_STALE, "then DELIVERED: stale"},
        {"d-2", "M2", 2, SB_STORE_EVENT_DUPLICATE, "the stale one again"},
        {"q-2", "M2", 1, SB_STORE_EVENT_STALE, "QUEUED after READ"},
        {"in-2", NULL, 0, SB_STORE_EVENT_STORED, "another inbound message"},
        {"r-1", "M1", 3, SB_STORE_EVENT_DUPLICATE, "a redelivery of READ"},
    };
    enum { N = sizeof(rows) / sizeof(rows[0]) };
    char payloads[N][32];
    struct sb_store_event evs[N];
    char dir[128];
    struct sb_store *st;
    struct inbox_rows *got;
    size_t stored = 0;
    int64_t last = 0;

    case_dir(dir, sizeof(dir), "batch-rules");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    for (size_t i = 0; i < N; i++) {
        snprintf(payloads[i], sizeof(payloads[i]), "{\"row\":%zu}", i);
        batch_event(&evs[i], rows[i].key, rows[i].message_id, rows[i].rank, payloads[i],
                    1000 + (int64_t)i);
    }
    CHECK(sb_store_put_events(st, evs, N) == SB_OK);
    for (size_t i = 0; i < N; i++) {
        bool is_stored = rows[i].want == SB_STORE_EVENT_STORED;
        CHECKF(evs[i].result == rows[i].want, "row %zu (%s): result %d", i, rows[i].note,
               (int)evs[i].result);
        CHECKF(is_stored ? evs[i].seq > last : evs[i].seq == 0, "row %zu (%s): seq %lld", i,
               rows[i].note, (long long)evs[i].seq);
        if (is_stored) {
            last = evs[i].seq;
            stored++;
        }
    }
    /* The inbox holds the stored ones under the seqs the batch reported, in batch order. */
    got = load_all(st, 0, MAX_ROWS);
    CHECK(got->n == stored);
    for (size_t i = 0, k = 0; i < N && k < got->n; i++) {
        if (rows[i].want == SB_STORE_EVENT_STORED) {
            CHECKF(got->seq[k] == evs[i].seq && strcmp(got->payload[k], payloads[i]) == 0,
                   "inbox row %zu: %s", k, got->payload[k]);
            k++;
        }
    }
    CHECK(raw_int(dir, "SELECT rank FROM message_status WHERE message_id = 'M1'") == 3);
    CHECK(raw_int(dir, "SELECT rank FROM message_status WHERE message_id = 'M2'") == 3);
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys") == 7); /* stale keys kept too */
    CHECK(raw_int(dir, "SELECT count(*) FROM messages_in") == 2);
    {
        int64_t when = 0;
        CHECK(sb_store_last_inbound(st, "+46700000001", &when) == SB_OK && when == 1008);
    }
    /* The next batch sees the first: a redelivery is a duplicate there too. */
    batch_event(&evs[0], "d-1", "M1", 2, payloads[0], 5000);
    batch_event(&evs[1], "in-3", NULL, 0, payloads[1], 5001);
    CHECK(sb_store_put_events(st, evs, 2) == SB_OK);
    CHECK(evs[0].result == SB_STORE_EVENT_DUPLICATE && evs[0].seq == 0);
    CHECK(evs[1].result == SB_STORE_EVENT_STORED && evs[1].seq > last);
    close_store(st);
}

/* Batches bigger than a loop turn's, an empty one, bad input (nothing written), and the staged
 * writes riding along in the batch's transaction (kept staged when they fail, without costing
 * the events). */
static void test_batch_edges(void)
{
    enum { BIG = 600 };
    static char keys[BIG][16];
    static struct sb_store_event evs[BIG];
    char dir[128];
    struct sb_store *st;
    int64_t depth = -1;
    struct inbox_rows *got;
    size_t bad = 0;

    case_dir(dir, sizeof(dir), "batch-edges");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    for (int i = 0; i < BIG; i++) {
        snprintf(keys[i], sizeof(keys[i]), "big-%d", i);
        batch_event(&evs[i], keys[i], NULL, 0, "{}", i);
    }
    CHECK(sb_store_put_events(st, evs, BIG) == SB_OK);
    for (int i = 0; i < BIG; i++) {
        bad +=
            evs[i].result != SB_STORE_EVENT_STORED || (i > 0 && evs[i].seq != evs[i - 1].seq + 1);
    }
    CHECK(bad == 0);
    CHECK(sb_store_inbox_depth(st, &depth) == SB_OK && depth == BIG);
    CHECK(sb_store_put_events(st, evs, 0) == SB_OK);
    CHECK(sb_store_put_events(st, NULL, 0) == SB_OK);

    /* Bad input: nothing of the batch is written, nothing is to be published. */
    batch_event(&evs[0], "ok-1", NULL, 0, "{}", 1);
    batch_event(&evs[1], "ok-2", NULL, 0, "{}", 1);
    evs[1].payload = NULL;
    CHECK(sb_store_put_events(st, evs, 2) == SB_E_INVAL);
    CHECK(evs[0].result == SB_STORE_EVENT_DUPLICATE && evs[0].seq == 0);
    evs[1].payload = "{}";
    evs[1].rank = -1;
    CHECK(sb_store_put_events(st, evs, 2) == SB_E_INVAL);
    evs[1].rank = 0;
    evs[1].dedupe_key = NULL;
    CHECK(sb_store_put_events(st, evs, 2) == SB_E_INVAL);
    CHECK(sb_store_put_events(st, NULL, 1) == SB_E_INVAL);
    CHECK(sb_store_put_events(NULL, evs, 1) == SB_E_INVAL);
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys WHERE key LIKE 'ok-%'") == 0);

    /* Staged deletes are applied by the batch's commit: no flush needed. */
    got = load_all(st, 0, 3);
    CHECK(got->n == 3);
    for (size_t k = 0; k < got->n; k++) {
        sb_store_stage_inbox_done(st, got->seq[k]);
    }
    evs[1].dedupe_key = "ok-2";
    CHECK(sb_store_put_events(st, evs, 2) == SB_OK && evs[1].result == SB_STORE_EVENT_STORED);
    CHECK(sb_store_staged(st) == 0);
    CHECK(sb_store_inbox_depth(st, &depth) == SB_OK && depth == BIG - 3 + 2);

    /* A staged write that fails stays staged; the batch is stored all the same. */
    CHECK(raw_exec(dir, "CREATE TRIGGER boom BEFORE DELETE ON inbox"
                        " BEGIN SELECT RAISE(ABORT, 'injected failure'); END") == SQLITE_OK);
    got = load_all(st, 0, 2);
    sb_store_stage_inbox_done(st, got->seq[0]);
    sb_store_stage_inbox_done(st, got->seq[1]);
    batch_event(&evs[0], "ok-3", NULL, 0, "{}", 1);
    CHECK(sb_store_put_events(st, evs, 1) == SB_OK && evs[0].result == SB_STORE_EVENT_STORED);
    CHECK(sb_store_staged(st) == 2);
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys WHERE key = 'ok-3'") == 1);
    CHECK(raw_int(dir, "SELECT count(*) FROM inbox") == BIG - 3 + 3); /* both deletes undone */
    CHECK(raw_exec(dir, "DROP TRIGGER boom") == SQLITE_OK);
    CHECK(sb_store_flush(st) == SB_OK && sb_store_staged(st) == 0);
    CHECK(sb_store_inbox_depth(st, &depth) == SB_OK && depth == BIG - 3 + 3 - 2);
    close_store(st);
}

/* The inbox: load order, after and max, staged deletes applied by flush (also after a failed
 * flush), depth, seqs never handed out twice, and a callback that calls the store. */
static void test_inbox(void)
{
    char dir[128];
    struct sb_store *st;
    enum sb_store_event_result res;
    int64_t depth = -1;
    struct inbox_rows *got;
    int64_t seqs[6];
    int64_t last;

    case_dir(dir, sizeof(dir), "inbox");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    CHECK(sb_store_inbox_depth(st, &depth) == SB_OK && depth == 0);
    got = load_all(st, 0, 10);
    CHECK(got->n == 0);
    for (int i = 0; i < 6; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        CHECK(put_inbound(st, key, i % 2 ? "+46700000001" : "+46700000002", 1000 + i, &res) ==
                  SB_OK &&
              res == SB_STORE_EVENT_STORED);
    }
    got = load_all(st, 0, 10);
    CHECK(got->n == 6);
    for (size_t i = 0; i < got->n && i < 6; i++) {
        char want[64];
        snprintf(want, sizeof(want), "{\"key\":\"k%zu\",\"ms\":%zu}", i, 1000 + i);
        CHECKF(strcmp(got->payload[i], want) == 0, "%s != %s", got->payload[i], want);
        seqs[i] = got->seq[i];
    }
    CHECK(strcmp(got->topic[1], "sinch/inbound/whatsapp/46700000001") == 0);
    got = load_all(st, seqs[1], 2); /* after and max */
    CHECK(got->n == 2 && got->seq[0] == seqs[2] && got->seq[1] == seqs[3]);
    CHECK(sb_store_load_inbox(st, 0, 0, collect, got) == SB_OK);
    CHECK(sb_store_load_inbox(st, 0, 10, NULL, NULL) == SB_E_INVAL);
    CHECK(sb_store_load_inbox(NULL, 0, 10, collect, got) == SB_E_INVAL);
    CHECK(sb_store_inbox_depth(st, NULL) == SB_E_INVAL);

    /* Acknowledged rows are deleted by the next flush, not before. */
    sb_store_stage_inbox_done(st, seqs[0]);
    sb_store_stage_inbox_done(st, seqs[2]);
    sb_store_stage_inbox_done(NULL, seqs[3]);
    CHECK(sb_store_staged(st) == 2);
    CHECK(sb_store_inbox_depth(st, &depth) == SB_OK && depth == 6);
    CHECK(sb_store_flush(st) == SB_OK);
    CHECK(sb_store_inbox_depth(st, &depth) == SB_OK && depth == 4);
    got = load_all(st, 0, 10);
    CHECK(got->n == 4 && got->seq[0] == seqs[1] && got->seq[1] == seqs[3]);

    /* A failed flush keeps the staged delete; put_event between the failed flushes commits on
     * its own (no transaction left open by the flush). */
    CHECK(raw_exec(dir, "CREATE TRIGGER boom BEFORE DELETE ON inbox"
                        " BEGIN SELECT RAISE(ABORT, 'injected failure'); END") == SQLITE_OK);
    sb_store_stage_inbox_done(st, seqs[1]);
    CHECK(sb_store_flush(st) == SB_E_STORE);
    CHECK(sb_store_staged(st) == 1);
    CHECK(put_inbound(st, "k6", NULL, 2000, &res) == SB_OK && res == SB_STORE_EVENT_STORED);
    CHECK(raw_int(dir, "SELECT count(*) FROM inbox") == 5); /* visible to another connection */
    CHECK(raw_exec(dir, "DROP TRIGGER boom") == SQLITE_OK);
    CHECK(sb_store_flush(st) == SB_OK && sb_store_staged(st) == 0);
    CHECK(sb_store_inbox_depth(st, &depth) == SB_OK && depth == 4);

    /* Callbacks run under the lock: calling the store fails (SB_E_BUG), staging works. */
    {
        static struct inbox_rows r;
        memset(&r, 0, sizeof(r));
        r.reenter = st;
        r.stage_done = true;
        CHECK(sb_store_load_inbox(st, 0, 10, collect, &r) == SB_OK);
        CHECK(r.n == 4 && r.reenter_err == SB_E_BUG);
        CHECK(sb_store_staged(st) == 4);
        CHECK(sb_store_flush(st) == SB_OK);
        CHECK(sb_store_inbox_depth(st, &depth) == SB_OK && depth == 0);
    }

    /* AUTOINCREMENT: an emptied inbox never hands out an old seq, not even after a restart. */
    got = load_all(st, 0, 10);
    CHECK(got->n == 0);
    close_store(st);
    st = open_ok(dir);
    if (!st) {
        return;
    }
    last = raw_int(dir, "SELECT seq FROM sqlite_sequence WHERE name = 'inbox'");
    CHECK(put_inbound(st, "k7", NULL, 3000, &res) == SB_OK && res == SB_STORE_EVENT_STORED);
    got = load_all(st, 0, 10);
    CHECK(got->n == 1 && got->seq[0] > last && last >= seqs[5]);
    close_store(st);
}

/* last_inbound keeps the latest time, whatever order the events come in. */
static void test_last_inbound(void)
{
    static const struct {
        const char *key;
        const char *contact;
        int64_t ms;
        int64_t want; /* last_inbound of +46700000001 after the row */
    } rows[] = {
        {"a", "+46700000001", 5000, 5000},
        {"b", "+46700000001", 4000, 5000}, /* an older message arriving late */
        {"c", "+46700000001", 7000, 7000},
        {"c", "+46700000001", 9000, 7000}, /* a duplicate changes nothing */
        {"d", "+46700000002", 9500, 7000}, /* another contact */
        {"e", NULL, 9900, 7000},           /* no contact (another trigger) */
    };
    char dir[128];
    struct sb_store *st;
    enum sb_store_event_result res;
    int64_t when = -1;

    case_dir(dir, sizeof(dir), "last-inbound");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    CHECK(sb_store_last_inbound(st, "+46700000001", &when) == SB_OK && when == 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        CHECKF(put_inbound(st, rows[i].key, rows[i].contact, rows[i].ms, &res) == SB_OK &&
                   sb_store_last_inbound(st, "+46700000001", &when) == SB_OK &&
                   when == rows[i].want,
               "row %zu: %lld", i, (long long)when);
    }
    CHECK(sb_store_last_inbound(st, "+46700000002", &when) == SB_OK && when == 9500);
    CHECK(sb_store_last_inbound(st, "+46700000003", &when) == SB_OK && when == 0);
    when = 5;
    CHECK(sb_store_last_inbound(st, NULL, &when) == SB_E_INVAL && when == 0);
    CHECK(sb_store_last_inbound(st, "+46700000001", NULL) == SB_E_INVAL);
    CHECK(sb_store_last_inbound(NULL, "+46700000001", &when) == SB_E_INVAL);
    close_store(st);
}

/* A database written by the first release (schema v1, frozen here as it shipped) is migrated
 * to the newest version on open: the commands stay, seqs go on growing, the inbound tables work. */
static void test_migrate_v1(void)
{
    static const char v1[] =
        "PRAGMA journal_mode=WAL;"
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
        "CREATE INDEX commands_handed ON commands(recipient, handed_ms)"
        " WHERE handed_ms IS NOT NULL;"
        "CREATE INDEX commands_finished ON commands(finished_ms) WHERE state = 2;"
        "CREATE TABLE dedupe(key TEXT PRIMARY KEY, seq INTEGER NOT NULL, until_ms INTEGER NOT NULL)"
        " WITHOUT ROWID;"
        "CREATE INDEX dedupe_until ON dedupe(until_ms);"
        "INSERT INTO commands(received_ms, topic, payload, gen_id)"
        " VALUES (1000, 'sinch/send', '{\"text\":\"old\"}', 'g-old');"
        "INSERT INTO commands(received_ms, topic, payload, gen_id, state, message_id, cmd_id,"
        " recipient, finished_ms)"
        " VALUES (1001, 'sinch/send', '{}', 'g-done', 2, 'M-old', 'c-old', '+46700000000', 5);"
        "INSERT INTO dedupe VALUES ('dk', 1, 99999);"
        /* the newest command, pruned: AUTOINCREMENT remembers seq 3 */
        "INSERT INTO commands(received_ms, topic, payload, gen_id) VALUES (1002, 't', '', 'g');"
        "DELETE FROM commands WHERE seq = 3;"
        "PRAGMA user_version=1;";
    char dir[128];
    struct sb_store *st;
    enum sb_store_event_result res;
    int64_t n = -1;
    int64_t seq = 0;
    char *cmd_id = NULL;
    char *recipient = NULL;
    bool dup = false;

    case_dir(dir, sizeof(dir), "migrate");
    CHECK(mkdir(dir, 0700) == 0);
    CHECK(raw_exec_mode(dir, v1, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) == SQLITE_OK);
    CHECK(raw_int(dir, "PRAGMA user_version") == 1);
    st = open_ok(dir);
    if (!st) {
        return;
    }
    CHECK(raw_int(dir, "PRAGMA user_version") == 5);
    CHECK(raw_int(dir, "SELECT count(*) FROM sqlite_master WHERE name IN"
                       " ('inbox', 'event_keys', 'message_status', 'contacts')") == 4);
    CHECK(sb_store_depth(st, &n) == SB_OK && n == 1);
    CHECK(sb_store_lookup_message(st, "M-old", &cmd_id, &recipient) == SB_OK);
    CHECK_STR(cmd_id, "c-old");
    free(cmd_id);
    free(recipient);
    CHECK(sb_store_dedupe_claim(st, "dk", 7, 1000, 1000, &dup) == SB_OK && dup);
    {
        struct sb_store_command c = {.received_ms = 2000,
                                     .topic = "sinch/send",
                                     .payload = "{}",
                                     .payload_len = 2,
                                     .gen_id = "g-new"};
        /* v4 dropped AUTOINCREMENT, and still no seq is handed out twice */
        CHECK(sb_store_put_command(st, &c, &seq) == SB_OK && seq == 4);
    }
    CHECK(put_inbound(st, "ev", "+46700000001", 3000, &res) == SB_OK &&
          res == SB_STORE_EVENT_STORED);
    CHECK(sb_store_inbox_depth(st, &n) == SB_OK && n == 1);
    close_store(st);
    st = open_ok(dir); /* at the newest version already: nothing runs twice */
    CHECK(raw_int(dir, "PRAGMA user_version") == 5);
    CHECK(sb_store_inbox_depth(st, &n) == SB_OK && n == 1);
    CHECK(sb_store_depth(st, &n) == SB_OK && n == 2);
    close_store(st);
}

/* Prune: event keys go once their own until_ms is reached at now_ms (whatever the history
 * limit), statuses when not updated since before_ms; inbox rows and contacts stay. */
static void test_prune(void)
{
    char dir[128];
    struct sb_store *st;
    enum sb_store_event_result res;
    int64_t when = 0;
    int64_t n = 0;
    int failed = 0;

    case_dir(dir, sizeof(dir), "prune");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    {
        struct sb_store_event ev = {.topic = "t", .payload = "{}", .channel = "WHATSAPP"};
        ev.dedupe_key = "old-key";
        ev.keep_until_ms = 1000;
        ev.message_id = "M-old";
        ev.rank = 3;
        ev.received_ms = 100;
        CHECK(sb_store_put_event(st, &ev, &res) == SB_OK && res == SB_STORE_EVENT_STORED);
        ev.dedupe_key = "new-key";
        ev.keep_until_ms = 5000;
        ev.message_id = "M-new";
        ev.received_ms = 3000;
        CHECK(sb_store_put_event(st, &ev, &res) == SB_OK && res == SB_STORE_EVENT_STORED);
    }
    CHECK(put_inbound(st, "inb", "+46700000001", 50, &res) == SB_OK); /* until 50 + 24 h */
    CHECK(sb_store_prune(st, 0, 999) == SB_OK); /* nothing reached its end yet */
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys") == 3);
    CHECK(raw_int(dir, "SELECT count(*) FROM message_status") == 2);
    CHECK(sb_store_prune(st, 2000, 1000) == SB_OK);
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys WHERE key = 'old-key'") == 0);
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys") == 2);
    CHECK(raw_int(dir, "SELECT count(*) FROM message_status") == 1);
    CHECK(raw_int(dir, "SELECT count(*) FROM message_status WHERE message_id = 'M-new'") == 1);
    /* A history limit far ahead does not cut a key short: only now_ms does. */
    CHECK(sb_store_prune(st, 1000000000, 4999) == SB_OK);
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys WHERE key = 'new-key'") == 1);
    CHECK(raw_int(dir, "SELECT count(*) FROM message_status") == 0);
    CHECK(sb_store_prune(st, 0, 24LL * 3600 * 1000 + 50) == SB_OK);
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys") == 0);
    CHECK(sb_store_inbox_depth(st, &n) == SB_OK && n == 3);
    CHECK(sb_store_last_inbound(st, "+46700000001", &when) == SB_OK && when == 50);
    /* After its key went, the same event is new again (and its message has no rank now). */
    {
        struct sb_store_event ev = {.topic = "t", .payload = "{}", .channel = "WHATSAPP"};
        ev.dedupe_key = "old-key";
        ev.keep_until_ms = 90000000;
        ev.message_id = "M-old";
        ev.rank = 2;
        ev.received_ms = 90000;
        CHECK(sb_store_put_event(st, &ev, &res) == SB_OK && res == SB_STORE_EVENT_STORED);
    }
    CHECK(sb_store_prune(NULL, 0, 0) == SB_E_INVAL);

    /* More than one batch of keys. */
    for (int i = 0; i < 2500; i++) {
        char key[32];
        snprintf(key, sizeof(key), "b%d", i);
        failed += put_inbound(st, key, NULL, 10, &res) != SB_OK;
    }
    CHECK(failed == 0);
    CHECK(sb_store_prune(st, 0, 24LL * 3600 * 1000 + 10) == SB_OK);
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys") == 1); /* "old-key", until 90000000 */
    close_store(st);
}

/* A full disk (RLIMIT_FSIZE in a child): put_event fails with SB_E_STORE, keeps neither the
 * key nor anything else, and the same event (Sinch's retry) is stored once there is room.
 * Exit codes say which step failed. */
static void test_disk_full(void)
{
    char dir[128];
    pid_t pid;
    int status = 0;

    case_dir(dir, sizeof(dir), "full");
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        static char payload[2048];
        struct sb_store *cst = NULL;
        char why[256];
        char key[32];
        struct rlimit rl;
        struct sb_store_event ev = {0};
        enum sb_store_event_result res;
        enum sb_err err = SB_OK;
        int64_t depth = -1;
        int64_t before = 0;
        int i = 0;
        signal(SIGXFSZ, SIG_IGN);
        if (sb_store_open(dir, &cst, why, sizeof(why)) != SB_OK) {
            _exit(2);
        }
        memset(payload, 'x', sizeof(payload) - 1);
        ev.topic = "sinch/inbound/whatsapp/46700000001";
        ev.payload = payload;
        ev.dedupe_key = key;
        ev.keep_until_ms = 1000000;
        ev.contact = "+46700000001";
        getrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = (rlim_t)512 * 1024;
        setrlimit(RLIMIT_FSIZE, &rl);
        for (; i < 100000 && err == SB_OK; i++) {
            snprintf(key, sizeof(key), "full-%d", i);
            ev.received_ms = i;
            before = depth;
            err = sb_store_put_event(cst, &ev, &res);
            if (err == SB_OK && (res != SB_STORE_EVENT_STORED ||
                                 sb_store_inbox_depth(cst, &depth) != SB_OK || depth != i + 1)) {
                _exit(3);
            }
        }
        if (err != SB_E_STORE || res != SB_STORE_EVENT_DUPLICATE) {
            _exit(4);
        }
        /* Reads still work: the failed event left nothing behind. */
        if (sb_store_inbox_depth(cst, &depth) != SB_OK || depth != before) {
            _exit(5);
        }
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_FSIZE, &rl);
        /* Sinch's retry of the same event (key is still "full-<i-1>") is new, not duplicate. */
        if (sb_store_put_event(cst, &ev, &res) != SB_OK || res != SB_STORE_EVENT_STORED) {
            _exit(6);
        }
        if (sb_store_put_event(cst, &ev, &res) != SB_OK || res != SB_STORE_EVENT_DUPLICATE) {
            _exit(7);
        }
        if (sb_store_inbox_depth(cst, &depth) != SB_OK || depth != before + 1) {
            _exit(8);
        }
        close_store(cst);
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys") ==
          raw_int(dir, "SELECT count(*) FROM inbox"));
}

/* A full disk in the middle of a burst: the batch whose commit fails keeps nothing (no inbox
 * row, no key: its copies are not duplicates later), reports nothing to publish, and the same
 * batch (Sinch's retries) is stored once there is room. Exit codes say which step failed. */
static void test_batch_disk_full(void)
{
    enum { PER = 8 };
    char dir[128];
    pid_t pid;
    int status = 0;

    case_dir(dir, sizeof(dir), "batch-full");
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        static char payload[2048];
        static char keys[PER][32];
        struct sb_store_event evs[PER + 1];
        struct sb_store *cst = NULL;
        char why[256];
        struct rlimit rl;
        enum sb_err err = SB_OK;
        int64_t depth = 0;
        int64_t before = 0;
        signal(SIGXFSZ, SIG_IGN);
        if (sb_store_open(dir, &cst, why, sizeof(why)) != SB_OK) {
            _exit(2);
        }
        memset(payload, 'x', sizeof(payload) - 1);
        getrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = (rlim_t)512 * 1024;
        setrlimit(RLIMIT_FSIZE, &rl);
        for (int b = 0; b < 10000 && err == SB_OK; b++) {
            for (int i = 0; i < PER; i++) {
                snprintf(keys[i], sizeof(keys[i]), "full-%d-%d", b, i);
                batch_event(&evs[i], keys[i], NULL, 0, payload, b);
            }
            batch_event(&evs[PER], keys[0], NULL, 0, payload, b); /* a copy, same batch */
            before = depth;
            err = sb_store_put_events(cst, evs, PER + 1);
            if (err == SB_OK &&
                (evs[0].result != SB_STORE_EVENT_STORED ||
                 evs[PER].result != SB_STORE_EVENT_DUPLICATE ||
                 sb_store_inbox_depth(cst, &depth) != SB_OK || depth != before + PER)) {
                _exit(3);
            }
        }
        if (err != SB_E_STORE) {
            _exit(4);
        }
        for (int i = 0; i <= PER; i++) {
            if (evs[i].result != SB_STORE_EVENT_DUPLICATE || evs[i].seq != 0) {
                _exit(5);
            }
        }
        if (sb_store_inbox_depth(cst, &depth) != SB_OK || depth != before) {
            _exit(6);
        }
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_FSIZE, &rl);
        if (sb_store_put_events(cst, evs, PER + 1) != SB_OK) {
            _exit(7);
        }
        for (int i = 0; i <= PER; i++) {
            if (evs[i].result != (i < PER ? SB_STORE_EVENT_STORED : SB_STORE_EVENT_DUPLICATE)) {
                _exit(8);
            }
        }
        if (sb_store_inbox_depth(cst, &depth) != SB_OK || depth != before + PER) {
            _exit(9);
        }
        close_store(cst);
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys") ==
          raw_int(dir, "SELECT count(*) FROM inbox"));
}

/* A child stores events and SIGKILLs itself right after the last put_event returns: every
 * event is in the file, and each one's redelivery is a duplicate. */
static void test_kill_after_put(void)
{
    enum { N = 200 };
    char dir[128];
    pid_t pid;
    int status = 0;
    struct sb_store *st;
    enum sb_store_event_result res;
    int64_t depth = -1;
    int64_t when = 0;

    case_dir(dir, sizeof(dir), "kill");
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct sb_store *cst = NULL;
        char why[256];
        if (sb_store_open(dir, &cst, why, sizeof(why)) != SB_OK) {
            _exit(2);
        }
        for (int i = 0; i < N; i++) {
            char key[32];
            snprintf(key, sizeof(key), "kill-%d", i);
            if (put_inbound(cst, key, "+46700000001", 1000 + i, &res) != SB_OK ||
                res != SB_STORE_EVENT_STORED) {
                _exit(3);
            }
        }
        raise(SIGKILL);
        /* cppcheck-suppress unreachableCode ; raise() is not noreturn: _exit if it returns */
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
    st = open_ok(dir);
    if (!st) {
        return;
    }
    CHECK(sb_store_inbox_depth(st, &depth) == SB_OK);
    CHECKF(depth == N, "depth %lld", (long long)depth);
    CHECK(sb_store_last_inbound(st, "+46700000001", &when) == SB_OK && when == 1000 + N - 1);
    CHECK(put_inbound(st, "kill-0", "+46700000001", 5000, &res) == SB_OK &&
          res == SB_STORE_EVENT_DUPLICATE);
    CHECK(put_inbound(st, "kill-199", "+46700000001", 5000, &res) == SB_OK &&
          res == SB_STORE_EVENT_DUPLICATE);
    close_store(st);
}

/* paho's thread puts commands while the loop stores events, publishes them from the inbox and
 * flushes their deletes: the direct transactions and the staged one never get in each
 * other's way, and every put is committed. */
enum { THREAD_PUTS = 3000 };

static void *command_thread(void *arg)
{
    struct sb_store *st = arg;
    intptr_t failures = 0;

    for (int i = 0; i < THREAD_PUTS; i++) {
        char gen[32];
        int64_t seq;
        struct sb_store_command c = {.received_ms = i, .topic = "sinch/send", .payload = "{}"};
        snprintf(gen, sizeof(gen), "g%d", i);
        c.payload_len = 2;
        c.gen_id = gen;
        failures += sb_store_put_command(st, &c, &seq) != SB_OK;
    }
    return (void *)failures;
}

static void test_threads(void)
{
    char dir[128];
    struct sb_store *st;
    pthread_t th;
    void *thread_failures = NULL;
    int failures = 0;
    int64_t after = 0;
    int64_t n = -1;

    case_dir(dir, sizeof(dir), "threads");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    CHECK(pthread_create(&th, NULL, command_thread, st) == 0);
    for (int i = 0; i < THREAD_PUTS; i++) {
        static struct inbox_rows r;
        enum sb_store_event_result res;
        char key[32];
        snprintf(key, sizeof(key), "t%d", i);
        failures +=
            put_inbound(st, key, "+46700000001", i, &res) != SB_OK || res != SB_STORE_EVENT_STORED;
        if (i % 7 == 0) {
            memset(&r, 0, sizeof(r));
            failures += sb_store_load_inbox(st, after, MAX_ROWS, collect, &r) != SB_OK;
            for (size_t k = 0; k < r.n; k++) {
                sb_store_stage_inbox_done(st, r.seq[k]);
                after = r.seq[k];
            }
            failures += sb_store_flush(st) != SB_OK;
        }
    }
    pthread_join(th, &thread_failures);
    CHECK(failures == 0 && thread_failures == NULL);
    CHECK(sb_store_depth(st, &n) == SB_OK && n == THREAD_PUTS);
    CHECK(sb_store_inbox_depth(st, &n) == SB_OK && n == THREAD_PUTS - after);
    close_store(st);
    CHECK(raw_int(dir, "SELECT count(*) FROM event_keys") == THREAD_PUTS);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/test_store_inbox.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    sb_log_setup(SB_LOG_ERROR, SB_LOG_TEXT);
    fprintf(stderr,
            "test_store_inbox: the store's error lines below come from injected failures\n");
    test_put_event_table();
    test_batch_rules();
    test_batch_edges();
    test_inbox();
    test_last_inbound();
    test_migrate_v1();
    test_prune();
    test_disk_full();
    test_batch_disk_full();
    test_kill_after_put();
    test_threads();
    rm_rf(root);
    return check_report();
}
