/* Unit tests of the history request's query (adapters/store/store_history.c) on a real file:
 * both directions merged newest first, the limit, a command's status taken from its newest
 * delivery report (READ and FAILED share a rank), commands never handed to Sinch left out,
 * other contacts left out, inbound history pruned with the rest of the history; the count of
 * messages sent since a time. */
#include "adapters/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/log.h"
#include "check.h"
#include "store_fixture.h"

#define MAX_ROWS 16

struct seen {
    size_t n;
    bool inbound[MAX_ROWS];
    int64_t at[MAX_ROWS];
    char status[MAX_ROWS][32];
    char payload[MAX_ROWS][96];
};

static void collect(void *arg, const struct sb_store_history_row *row)
{
    struct seen *s = arg;

    if (s->n == MAX_ROWS) {
        return;
    }
    s->inbound[s->n] = row->inbound;
    s->at[s->n] = row->at_ms;
    snprintf(s->status[s->n], sizeof(s->status[0]), "%s", row->status ? row->status : "-");
    snprintf(s->payload[s->n], sizeof(s->payload[0]), "%.*s", (int)row->payload_len, row->payload);
    s->n++;
}

/* A command to `to`, handed to Sinch at `at` as message `mid`, finished as `outcome`. */
static void put_sent(struct sb_store *st, const char *to, int64_t at, const char *mid,
                     const char *text)
{
    int64_t seq = 0;
    struct sb_store_command c = {.received_ms = at,
                                 .topic = "sinch/send",
                                 .payload = text,
                                 .payload_len = strlen(text),
                                 .gen_id = "g"};

    CHECK(sb_store_put_command(st, &c, &seq) == SB_OK);
    sb_store_stage_attempt(st, seq, mid, to, 1, at);
    sb_store_stage_outcome(st, seq, mid, to, "WHATSAPP", mid, "ACCEPTED", 1, "sinch/sent", "{}");
    CHECK(sb_store_flush(st) == SB_OK);
}

static void put_event(struct sb_store *st, const char *key, const char *contact, const char *mid,
                      const char *status, int64_t at, const char *payload)
{
    enum sb_store_event_result res;
    struct sb_store_event ev = {
        .dedupe_key = key,
        .keep_until_ms = at + 24LL * 3600 * 1000,
        .topic = "sinch/x",
        .payload = payload,
        .message_id = mid,
        .channel = mid ? "WHATSAPP" : NULL,
        .rank = !status                                    ? 0
                : strcmp(status, "DELIVERED") == 0         ? 2
                : strcmp(status, "QUEUED_ON_CHANNEL") == 0 ? 1
                                                           : 3,
        .status = status,
        .contact = contact,
        .received_ms = at,
    };

    CHECK(sb_store_put_event(st, &ev, &res) == SB_OK && res == SB_STORE_EVENT_STORED);
}

static void test_history(void)
{
    char dir[128];
    struct seen s = {0};
    struct sb_store *st;
    int64_t seq = 0;

    case_dir(dir, sizeof(dir), "history");
    st = open_ok(dir);
    if (!st) {
        return;
    }
    put_sent(st, "+46701234567", 1000, "M1", "first");
    put_event(st, "k1", NULL, "M1", "DELIVERED", 1100, "{}");
    put_event(st, "k2", NULL, "M1", "READ", 1200, "{}");
    put_event(st, "k3", "+46701234567", NULL, NULL, 1300, "{\"text\":\"on it\"}");
    put_sent(st, "+46701234567", 1400, "M2", "{\"text\":\"second\"}");
    put_event(st, "k4", NULL, "M2", "FAILED", 1500, "{}"); /* rank 3 like READ */
    put_sent(st, "+46709999999", 1600, "M3", "someone else");
    {
        /* Refused before Sinch: no handed_ms, so not a message of the history. */
        struct sb_store_command c = {
            .received_ms = 1700, .topic = "t", .payload = "x", .payload_len = 1, .gen_id = "g"};
        CHECK(sb_store_put_command(st, &c, &seq) == SB_OK);
        sb_store_stage_outcome(st, seq, "refused", "+46701234567", NULL, NULL, "not_allowed", 0,
                               "sinch/error", "{}");
        CHECK(sb_store_flush(st) == SB_OK);
    }
    put_sent(st, "+46701234567", 1800, "M4", "unanswered");

    CHECK(sb_store_history(st, "+46701234567", 10, collect, &s) == SB_OK);
    CHECKF(s.n == 4, "rows %zu", s.n);
    CHECK(!s.inbound[0] && s.at[0] == 1800);
    CHECK_STR(s.status[0], "ACCEPTED");
    CHECK(!s.inbound[1] && s.at[1] == 1400);
    CHECK_STR(s.status[1], "FAILED");
    CHECK_STR(s.payload[1], "{\"text\":\"second\"}");
    CHECK(s.inbound[2] && s.at[2] == 1300);
    CHECK_STR(s.payload[2], "{\"text\":\"on it\"}");
    CHECK_STR(s.status[2], "-");
    CHECK(!s.inbound[3] && s.at[3] == 1000);
    CHECK_STR(s.status[3], "READ");

    memset(&s, 0, sizeof(s));
    CHECK(sb_store_history(st, "+46701234567", 2, collect, &s) == SB_OK);
    CHECK(s.n == 2 && s.at[0] == 1800 && s.at[1] == 1400);

    memset(&s, 0, sizeof(s));
    CHECK(sb_store_history(st, "+10000000000", 5, collect, &s) == SB_OK && s.n == 0);
    CHECK(sb_store_history(st, NULL, 5, collect, &s) == SB_E_INVAL);

    /* M1, M2, M3 and M4 were ACCEPTED; only DONE rows (outcome published) count. */
    {
        int64_t n = -1;
        CHECK(sb_store_count_sent_since(st, 0, &n) == SB_OK && n == 0);
        CHECK(raw_exec(dir, "UPDATE commands SET state = 2, finished_ms = handed_ms + 1") ==
              SQLITE_OK);
        CHECK(sb_store_count_sent_since(st, 0, &n) == SB_OK && n == 4);
        CHECK(sb_store_count_sent_since(st, 1402, &n) == SB_OK && n == 2);
    }

    /* The inbound half goes with the history period; the outbound half needs DONE rows. */
    CHECK(raw_int(dir, "SELECT count(*) FROM messages_in") == 1);
    /* Its payload is only there (schema v5): kept while its inbox row waits for the broker. */
    CHECK(raw_int(dir, "SELECT count(*) FROM inbox WHERE payload = '' AND message_in > 0") == 1);
    CHECK(sb_store_prune(st, 1301, 1301) == SB_OK);
    CHECK(raw_int(dir, "SELECT count(*) FROM messages_in") == 1);
    CHECK(raw_exec(dir, "DELETE FROM inbox") == SQLITE_OK); /* as their PUBACKs would */
    CHECK(sb_store_prune(st, 1301, 1301) == SB_OK);
    CHECK(raw_int(dir, "SELECT count(*) FROM messages_in") == 0);
    close_store(st);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/test_store_history.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    sb_log_setup(SB_LOG_ERROR, SB_LOG_TEXT);
    test_history();
    rm_rf(root);
    return check_report();
}
