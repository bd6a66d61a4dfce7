/* Outcome payloads: exact JSON for P/sent and P/error, and the excerpt of unparseable input. */
#include "bridge/outcome.h"

#include <stdlib.h>

#include "check.h"

static void test_sent(void)
{
    struct sb_outcome_sent s = {.id = "freezer-alarm-42",
                                .message_id = "01J03E28JT97KB6CQ643DZVMXX",
                                .to = "+15551234567",
                                .alias = "mom",
                                .channel = "WHATSAPP",
                                .accepted_time = "2024-06-15T14:20:01.284Z",
                                .attempts = 1};
    char *j = sb_outcome_sent_json(&s);
    CHECK_STR(j, "{\"id\":\"freezer-alarm-42\",\"message_id\":\"01J03E28JT97KB6CQ643DZVMXX\","
                 "\"to\":\"+15551234567\",\"alias\":\"mom\",\"channel\":\"WHATSAPP\","
                 "\"accepted_time\":\"2024-06-15T14:20:01.284Z\",\"attempts\":1}");
    free(j);
}

static void test_error(void)
{
    json_t *sinch = json_pack("{s:i,s:s,s:s}", "code", 400, "message", "Invalid argument", "status",
                              "INVALID_ARGUMENT");
    struct sb_outcome_error e = {.id = "a1",
                                 .to = "+15551234567",
                                 .code = "sinch_rejected",
                                 .message = "Sinch refused the request",
                                 .http_status = 400,
                                 .sinch = sinch,
                                 .attempts = 1};
    char *j = sb_outcome_error_json(&e);
    CHECK_STR(j, "{\"id\":\"a1\",\"to\":\"+15551234567\",\"error\":{\"code\":\"sinch_rejected\","
                 "\"message\":\"Sinch refused the request\",\"http_status\":400,\"sinch\":"
                 "{\"code\":400,\"message\":\"Invalid argument\",\"status\":\"INVALID_ARGUMENT\"}},"
                 "\"attempts\":1}");
    free(j);
    json_decref(sinch);
}

static void test_error_without_id(void)
{
    char big[1000];
    memset(big, 'x', sizeof(big));
    struct sb_outcome_error e = {.code = "invalid_command",
                                 .message = "larger than 64 KiB",
                                 .topic = "sinch/send",
                                 .payload = big,
                                 .payload_len = sizeof(big)};
    char *j = sb_outcome_error_json(&e);
    json_t *o = json_loads(j, 0, NULL);
    CHECK(o && json_is_null(json_object_get(o, "id")));
    CHECK_STR(json_string_value(json_object_get(o, "topic")), "sinch/send");
    CHECK(strlen(json_string_value(json_object_get(o, "excerpt"))) == SB_EXCERPT_BYTES);
    CHECK(json_integer_value(json_object_get(o, "attempts")) == 0);
    CHECK(json_object_get(json_object_get(o, "error"), "http_status") == NULL);
    json_decref(o);
    free(j);
}

static void test_excerpt(void)
{
    const struct {
        const char *in;
        size_t len;
        size_t max;
        const char *want;
    } rows[] = {
        {"plain", 5, 256, "plain"},
        {"H\xc3\xa5j", 4, 256, "H\xc3\xa5j"},    /* valid two-byte sequence kept */
        {"H\xc3\xa5j", 2, 256, "H\xef\xbf\xbd"}, /* cut sequence replaced */
        {"a\xff"
         "b",
         3, 256,
         "a\xef\xbf\xbd"
         "b"},                                            /* invalid byte replaced */
        {"\xc0\xaf", 2, 256, "\xef\xbf\xbd\xef\xbf\xbd"}, /* overlong '/' */
        {"\xed\xa0\x80", 3, 256, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"a\0b", 3, 256,
         "a\xef\xbf\xbd"
         "b"},                   /* NUL would cut a C string */
        {"abcdef", 6, 3, "abc"}, /* at most max bytes of input */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *got = sb_utf8_excerpt(rows[i].in, rows[i].len, rows[i].max);
        CHECKF(got && strcmp(got, rows[i].want) == 0, "row %zu", i);
        free(got);
    }
}

int main(void)
{
    test_sent();
    test_error();
    test_error_without_id();
    test_excerpt();
    return check_report();
}
