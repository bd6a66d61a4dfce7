/* The simulator's fault queue: the checks of a rule (a table of bad rules and their messages) and
 * the FIFO over time: count, -1, for_ms, and for_ms with a count. sim_faults.c takes the time
 * from its caller, so it is compiled straight into this test and driven with a fake clock. */
#include "check.h"

#include "../sim/sim_faults.c" /* NOLINT(bugprone-suspicious-include): on purpose */

#define T0 1700000000000LL /* the fake clock's start, ms */

static json_t *rules_of(const char *text)
{
    json_error_t err;
    json_t *req = json_loads(text, 0, &err);
    CHECKF(req != NULL, "test rules not JSON: %s: %s", text, err.text);
    return req;
}

/* Adds `text` at `now`; returns whether it was taken, with the reason in `why`. */
static bool add(struct sim_faults *q, const char *text, int64_t now, char *why, size_t why_len)
{
    size_t queued = 0;
    json_t *req = rules_of(text);
    bool ok = req && sim_faults_add(q, req, now, &queued, why, why_len);
    json_decref(req);
    return ok;
}

/* The status a request of `ep` gets at `now`: the rule's, or 0 when no rule matched. */
static int take(struct sim_faults *q, enum sim_endpoint ep, int64_t now)
{
    struct sim_fault_hit hit;
    if (!sim_faults_take(q, ep, now, &hit)) {
        return 0;
    }
    free(hit.body);
    return hit.status;
}

static void test_bad_rules(void)
{
    static const struct {
        const char *rules;
        const char *why; /* a part of the reason */
    } rows[] = {
        {"{\"rules\":[{\"match\":\"send\",\"for_ms\":0}]}", "for_ms must be an integer 1..3600000"},
        {"{\"rules\":[{\"match\":\"send\",\"for_ms\":-5}]}", "for_ms must be"},
        {"{\"rules\":[{\"match\":\"send\",\"for_ms\":3600001}]}", "for_ms must be"},
        {"{\"rules\":[{\"match\":\"send\",\"for_ms\":1.5}]}", "for_ms must be"},
        {"{\"rules\":[{\"match\":\"send\",\"for_ms\":\"60000\"}]}", "for_ms must be"},
        {"{\"rules\":[{\"match\":\"send\",\"for_ms\":null}]}", "for_ms must be"},
        {"{\"rules\":[{\"match\":\"send\",\"status\":503},{\"match\":\"send\",\"for\":1}]}",
         "rules[1]: unknown key \"for\""},
        {"{\"rules\":[{\"match\":\"send\",\"count\":0,\"for_ms\":1000}]}", "count must be"},
        {"{\"rules\":[{\"match\":\"send\",\"delay_ms\":600001}]}", "delay_ms must be"},
        {"{\"rules\":[{\"match\":\"sms\",\"for_ms\":1000}]}", "match must be"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct sim_faults *q = sim_faults_new();
        char why[320] = "";
        CHECKF(!add(q, rows[i].rules, T0, why, sizeof(why)), "%s was taken", rows[i].rules);
        CHECKF(strstr(why, rows[i].why) != NULL, "%s: \"%s\" does not say \"%s\"", rows[i].rules,
               why, rows[i].why);
        CHECKF(take(q, SIM_EP_SEND, T0) == 0, "%s: a rule was queued", rows[i].rules);
        sim_faults_free(q);
    }
}

static void test_for_ms(void)
{
    struct sim_faults *q = sim_faults_new();
    char why[320];

    /* for_ms alone: every matching request until the time is up, counted from the add. */
    CHECK(add(q,
              "{\"rules\":[{\"match\":\"send\",\"status\":503,\"for_ms\":60000},"
              "{\"match\":\"send\",\"status\":429,\"count\":1}]}",
              T0, why, sizeof(why)));
    for (int i = 0; i < 1000; i++) {
        CHECK(take(q, SIM_EP_SEND, T0 + (int64_t)i * 59) == 503);
    }
    CHECK(take(q, SIM_EP_TOKEN, T0 + 1000) == 0); /* another kind passes it by */
    CHECK(take(q, SIM_EP_SEND, T0 + 59999) == 503);
    /* Gone at T0 + for_ms: the next rule of the FIFO answers, once. */
    CHECK(take(q, SIM_EP_SEND, T0 + 60000) == 429);
    CHECK(take(q, SIM_EP_SEND, T0 + 60001) == 0);

    /* The clock of a queued rule runs from its add, not from when it reaches the head. */
    CHECK(add(q,
              "{\"rules\":[{\"match\":\"send\",\"status\":500,\"for_ms\":1000},"
              "{\"match\":\"send\",\"status\":502,\"for_ms\":1500},"
              "{\"match\":\"any\",\"status\":504}]}",
              T0, why, sizeof(why)));
    CHECK(take(q, SIM_EP_SEND, T0 + 999) == 500);
    CHECK(take(q, SIM_EP_SEND, T0 + 1000) == 502);
    CHECK(take(q, SIM_EP_SEND, T0 + 1499) == 502);
    CHECK(take(q, SIM_EP_APP, T0 + 1499) == 504); /* `any` was behind send rules only */
    CHECK(take(q, SIM_EP_SEND, T0 + 1500) == 0);

    /* Expired rules leave from the middle and the end of the queue: the tail stays right. */
    CHECK(add(q,
              "{\"rules\":[{\"match\":\"token\",\"status\":401,\"count\":-1},"
              "{\"match\":\"send\",\"status\":503,\"for_ms\":10}]}",
              T0, why, sizeof(why)));
    CHECK(take(q, SIM_EP_SEND, T0 + 10) == 0);
    CHECK(add(q, "{\"rules\":[{\"match\":\"send\",\"status\":500}]}", T0 + 10, why, sizeof(why)));
    CHECK(take(q, SIM_EP_SEND, T0 + 11) == 500);
    CHECK(take(q, SIM_EP_TOKEN, T0 + 11) == 401);
    sim_faults_clear(q);

    /* for_ms with a count: gone at whichever comes first. */
    CHECK(add(q,
              "{\"rules\":[{\"match\":\"send\",\"status\":503,\"count\":2,\"for_ms\":100},"
              "{\"match\":\"send\",\"status\":502,\"count\":5,\"for_ms\":100}]}",
              T0, why, sizeof(why)));
    CHECK(take(q, SIM_EP_SEND, T0) == 503);
    CHECK(take(q, SIM_EP_SEND, T0 + 1) == 503);
    CHECK(take(q, SIM_EP_SEND, T0 + 2) == 502); /* the count ran out first */
    CHECK(take(q, SIM_EP_SEND, T0 + 100) == 0); /* the time ran out first */

    /* A body is handed out on every request of a timed rule, and freed with it. */
    CHECK(add(
        q, "{\"rules\":[{\"match\":\"send\",\"status\":502,\"raw_body\":\"down\",\"for_ms\":50}]}",
        T0, why, sizeof(why)));
    for (int i = 0; i < 3; i++) {
        struct sim_fault_hit hit;
        CHECK(sim_faults_take(q, SIM_EP_SEND, T0 + i, &hit));
        CHECK_STR(hit.body, "down");
        free(hit.body);
    }
    sim_faults_free(q); /* the rule still queued: freed here (ASan would tell) */
}

static void test_count(void)
{
    struct sim_faults *q = sim_faults_new();
    char why[320];

    CHECK(add(q,
              "{\"rules\":[{\"match\":\"send\",\"status\":503,\"count\":2},"
              "{\"match\":\"send\",\"status\":429}]}",
              T0, why, sizeof(why)));
    /* No time limit: an hour later the rules are still there. */
    CHECK(take(q, SIM_EP_SEND, T0 + 3600000) == 503);
    CHECK(take(q, SIM_EP_SEND, T0 + 3600000) == 503);
    CHECK(take(q, SIM_EP_SEND, T0 + 3600000) == 429);
    CHECK(take(q, SIM_EP_SEND, T0 + 3600000) == 0);
    sim_faults_free(q);
}

int main(void)
{
    test_bad_rules();
    test_for_ms();
    test_count();
    return check_report();
}
