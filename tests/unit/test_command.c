/* Unit tests of bridge/command.c: tables of payloads (P/send and P/send/<recipient>) and what
 * sb_command_parse() makes of them, the UTF-8 check, the choice postback. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/command.h"
#include "check.h"

#define GEN_ID "gen-0001"

/* Built by hand: only the fields command.c and config.c's lookups read. The config's strings
 * are not const, so they live in arrays. */
static char mom[] = "mom", mom_number[] = "+46701234567";
static char ops[] = "ops", ops_number[] = "+15551234567";
static char far[] = "far", far_number[] = "+4915112345678";
static char allow_se[] = "+4670*", allow_us[] = "+1555*";
static char whatsapp[] = "WHATSAPP", sms[] = "SMS";

static struct sb_contact contacts[] = {
    {.alias = mom, .number = mom_number},
    {.alias = ops, .number = ops_number},
    {.alias = far, .number = far_number},
};
static char *allow_to[] = {allow_se, allow_us};

static struct sb_config cfg_wa = {
    .default_channel = whatsapp,
    .contacts = contacts,
    .n_contacts = 3,
    .allow_to = allow_to,
    .n_allow_to = 2,
};
static struct sb_config cfg_sms = {
    .default_channel = sms,
    .contacts = contacts,
    .n_contacts = 3,
};

struct row {
    const char *name;
    const struct sb_config *cfg; /* NULL: cfg_wa */
    const char *topic;           /* the <recipient> level of P/send/<recipient>, NULL: P/send */
    const char *payload;
    size_t len;       /* 0: strlen(payload) */
    const char *code; /* NULL: accepted */
    const char *id;   /* the expected out->id ("" for "id": null) */
    const char *msg;  /* a part of the error message, or NULL */
    /* accepted rows */
    const char *to;
    const char *alias;
    const char *contact_id;
    const char *channels; /* comma-separated */
    int kind;             /* an enum sb_content_kind; checked when not 0 or with content */
    const char *content;  /* the expected content as JSON, or NULL */
    long ttl;
    const char *metadata;
    const char *dedupe_key;
    long dedupe_window;
    const char *fallback; /* the expected fallback_template as JSON, or NULL */
};

#define INVALID   "invalid_command"
#define RECIPIENT "invalid_recipient"
#define NOT_ALLOW "not_allowed"

/* A refused payload: the code, the id it is refused under, a part of the message (or NULL). */
#define BAD(name_, topic_, payload_, code_, id_, msg_)                                             \
    {                                                                                              \
        .name = (name_), .topic = (topic_), .payload = (payload_), .code = (code_), .id = (id_),   \
        .msg = (msg_)                                                                              \
    }

static const struct row rows[] = {
    /* ---- accepted: every form ---- */
    {.name = "text, to with +",
     .payload =
         "{\"id\":\"freezer-alarm-42\",\"to\":\"+15551234567\",\"text\":\"Freezer 3 is at -4 C\"}",
     .id = "freezer-alarm-42",
     .to = "+15551234567",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"Freezer 3 is at -4 C\""},
    {.name = "text, to without +, generated id",
     .payload = "{\"to\":\"46701234567\",\"text\":\"hi\"}",
     .id = GEN_ID,
     .to = "+46701234567",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"hi\""},
    {.name = "id of every allowed character",
     .payload = "{\"id\":\"Az09._:-\",\"to\":\"+46701234567\",\"text\":\"hi\"}",
     .id = "Az09._:-",
     .to = "+46701234567"},
    {.name = "id of 64 characters",
     .payload = "{\"id\":\"0123456789012345678901234567890123456789012345678901234567890123\","
                "\"to\":\"+46701234567\",\"text\":\"hi\"}",
     .id = "0123456789012345678901234567890123456789012345678901234567890123",
     .to = "+46701234567"},
    {.name = "alias in to",
     .payload = "{\"id\":\"a1\",\"to\":\"mom\",\"text\":\"hi\"}",
     .id = "a1",
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"hi\""},
    {.name = "unicode text",
     .payload = "{\"to\":\"mom\",\"text\":\"Fr\xc3\xa4s \xe2\x82\xac \xf0\x9f\xa7\x8a\"}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"Fr\xc3\xa4s \xe2\x82\xac \xf0\x9f\xa7\x8a\""},
    {.name = "topic digits, plain text",
     .topic = "46701234567",
     .payload = "Freezer 3 is at -4 C",
     .id = GEN_ID,
     .to = "+46701234567",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"Freezer 3 is at -4 C\""},
    {.name = "topic, 42 is text",
     .topic = "46701234567",
     .payload = "42",
     .id = GEN_ID,
     .to = "+46701234567",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"42\""},
    {.name = "topic, {oops is text",
     .topic = "46701234567",
     .payload = "{oops",
     .id = GEN_ID,
     .to = "+46701234567",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"{oops\""},
    {.name = "topic, a JSON string is text verbatim",
     .topic = "46701234567",
     .payload = "\"quoted\"",
     .id = GEN_ID,
     .to = "+46701234567",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"\\\"quoted\\\"\""},
    {.name = "topic, a JSON array is text",
     .topic = "46701234567",
     .payload = "[1]",
     .id = GEN_ID,
     .to = "+46701234567",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"[1]\""},
    {.name = "topic, null is text",
     .topic = "46701234567",
     .payload = "null",
     .id = GEN_ID,
     .to = "+46701234567",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"null\""},
    {.name = "topic, a huge number is text",
     .topic = "46701234567",
     .payload = "99999999999999999999999",
     .id = GEN_ID,
     .to = "+46701234567",
     .content = "\"99999999999999999999999\""},
    {.name = "topic, \\u0000 outside an object is text",
     .topic = "46701234567",
     .payload = "\"a\\u0000b\"",
     .id = GEN_ID,
     .to = "+46701234567",
     .content = "\"\\\"a\\\\u0000b\\\"\""},
    {.name = "topic, multi-line text",
     .topic = "46701234567",
     .payload = "line 1\nline 2\n",
     .id = GEN_ID,
     .to = "+46701234567",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"line 1\\nline 2\\n\""},
    {.name = "topic alias, plain text",
     .topic = "ops",
     .payload = "Snooze?",
     .id = GEN_ID,
     .to = "+15551234567",
     .alias = "ops",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"Snooze?\""},
    {.name = "topic, command without to",
     .topic = "46701234567",
     .payload = "{\"id\":\"t1\",\"channel\":\"sms\",\"text\":\"hi\"}",
     .id = "t1",
     .to = "+46701234567",
     .channels = "SMS",
     .kind = SB_CONTENT_TEXT,
     .content = "\"hi\""},
    {.name = "topic alias, command",
     .topic = "mom",
     .payload = " {\"media\":{\"url\":\"https://x.example/a.jpg\"}} ",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_MEDIA,
     .content = "{\"url\":\"https://x.example/a.jpg\"}"},
    {.name = "default channel from the config",
     .cfg = &cfg_sms,
     .topic = "4915112345678",
     .payload = "hi",
     .id = GEN_ID,
     .to = "+4915112345678",
     .channels = "SMS",
     .kind = SB_CONTENT_TEXT,
     .content = "\"hi\""},
    {.name = "channels list, upper-cased",
     .payload = "{\"to\":\"+46701234567\",\"channels\":[\"whatsapp\",\"Sms\"],\"text\":\"hi\"}",
     .id = GEN_ID,
     .to = "+46701234567",
     .channels = "WHATSAPP,SMS",
     .kind = SB_CONTENT_TEXT},
    {.name = "channels list of 8",
     .payload = "{\"to\":\"+46701234567\",\"channels\":[\"A\",\"B\",\"C\",\"D\",\"E\",\"F\",\"G\","
                "\"H_I\"],"
                "\"text\":\"hi\"}",
     .id = GEN_ID,
     .to = "+46701234567",
     .channels = "A,B,C,D,E,F,G,H_I"},
    {.name = "channel RCS",
     .payload = "{\"to\":\"+46701234567\",\"channel\":\"RCS\",\"text\":\"hi\"}",
     .id = GEN_ID,
     .to = "+46701234567",
     .channels = "RCS"},
    {.name = "contact_id",
     .payload = "{\"contact_id\":\"01J0NPZX45HY43KWJRP1XPA7Z3\",\"text\":\"hi\"}",
     .id = GEN_ID,
     .contact_id = "01J0NPZX45HY43KWJRP1XPA7Z3",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT},
    {.name = "media",
     .payload =
         "{\"to\":\"mom\",\"media\":{\"url\":\"https://files.example.com/cam3/snapshot.jpg\"}}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_MEDIA,
     .content = "{\"url\":\"https://files.example.com/cam3/snapshot.jpg\"}"},
    {.name = "media with caption, http",
     .payload =
         "{\"to\":\"mom\",\"media\":{\"url\":\"http://x.example/a.pdf\",\"caption\":\"Report\"}}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_MEDIA,
     .content = "{\"url\":\"http://x.example/a.pdf\",\"caption\":\"Report\"}"},
    {.name = "template WhatsApp",
     .payload = "{\"to\":\"mom\",\"template\":{\"id\":\"freezer_alarm\",\"language\":\"en_US\","
                "\"version\":\"2\",\"params\":{\"body[1]text\":\"Freezer 3\","
                "\"button[0]quick_reply[1]payload\":\"\"}}}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEMPLATE,
     .content =
         "{\"id\":\"freezer_alarm\",\"language\":\"en_US\",\"version\":\"2\",\"params\":{\"body[1]"
         "text\":\"Freezer 3\",\"button[0]quick_reply[1]payload\":\"\"}}"},
    {.name = "template WhatsApp, language en and fil",
     .payload = "{\"to\":\"mom\",\"template\":{\"id\":\"t\",\"language\":\"en\"},"
                "\"fallback_template\":{\"id\":\"u\",\"language\":\"fil\"}}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEMPLATE,
     .content = "{\"id\":\"t\",\"language\":\"en\"}",
     .fallback = "{\"id\":\"u\",\"language\":\"fil\"}"},
    {.name = "template SMS: any language, or none",
     .payload = "{\"to\":\"mom\",\"channel\":\"SMS\",\"template\":{\"id\":"
                "\"01J0S3C4DWA7N36096Q14DR9GP\"}}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "SMS",
     .kind = SB_CONTENT_TEMPLATE,
     .content = "{\"id\":\"01J0S3C4DWA7N36096Q14DR9GP\"}"},
    {.name = "template SMS with en-US",
     .payload =
         "{\"to\":\"mom\",\"channel\":\"SMS\",\"template\":{\"id\":\"x\",\"language\":\"en-US\"}}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "SMS",
     .kind = SB_CONTENT_TEMPLATE},
    {.name = "choice WhatsApp: 3 options of 20 characters",
     .payload = "{\"id\":\"c1\",\"to\":\"mom\",\"choice\":{\"text\":\"Alarm!\",\"options\":["
                "\"Acknowledge\","
                "\"Snooze\",\"12345678901234567\xc3\xa4\xc3\xa4\xc3\xa4\"]}}",
     .id = "c1",
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_CHOICE,
     .content = "{\"text\":\"Alarm!\",\"options\":[\"Acknowledge\",\"Snooze\","
                "\"12345678901234567\xc3\xa4\xc3\xa4\xc3\xa4\"]}"},
    {.name = "choice SMS: 10 long options",
     .payload = "{\"to\":\"mom\",\"channel\":\"SMS\",\"choice\":{\"text\":\"Pick\",\"options\":["
                "\"one long "
                "option over twenty\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\"]}}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "SMS",
     .kind = SB_CONTENT_CHOICE},
    {.name = "location",
     .payload =
         "{\"to\":\"mom\",\"location\":{\"lat\":59.33,\"lon\":18.06,\"title\":\"Warehouse 2\","
         "\"label\":\"Dock B\"}}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_LOCATION,
     .content = "{\"lat\":59.33,\"lon\":18.06,\"title\":\"Warehouse 2\",\"label\":\"Dock B\"}"},
    {.name = "location at the limits, integers",
     .payload = "{\"to\":\"mom\",\"location\":{\"lat\":-90,\"lon\":180}}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_LOCATION,
     .content = "{\"lat\":-90,\"lon\":180}"},
    {.name = "raw message",
     .payload = "{\"to\":\"mom\",\"message\":{\"card_message\":{\"title\":\"Freezer 3\"},"
                "\"agent\":{\"display_name\":\"Bot\",\"type\":\"BOT\"}}}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_MESSAGE,
     .content = "{\"card_message\":{\"title\":\"Freezer 3\"},\"agent\":{\"display_name\":\"Bot\","
                "\"type\":\"BOT\"}}"},
    {.name = "every option",
     .payload = "{\"id\":\"o1\",\"to\":\"+15551234567\",\"text\":\"hi\",\"ttl\":600,\"metadata\":"
                "\"zone=3\","
                "\"dedupe_key\":\"freezer3-warm\",\"dedupe_window\":86400,"
                "\"fallback_template\":{\"id\":\"freezer_alarm\",\"language\":\"en_US\"}}",
     .id = "o1",
     .to = "+15551234567",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"hi\"",
     .ttl = 600,
     .metadata = "zone=3",
     .dedupe_key = "freezer3-warm",
     .dedupe_window = 86400,
     .fallback = "{\"id\":\"freezer_alarm\",\"language\":\"en_US\"}"},
    {.name = "dedupe_key alone: window 3600, empty metadata, largest ttl",
     .payload = "{\"to\":\"mom\",\"text\":\"hi\",\"dedupe_key\":\"k\",\"metadata\":\"\","
                "\"ttl\":315576000000}",
     .id = GEN_ID,
     .to = "+46701234567",
     .alias = "mom",
     .channels = "WHATSAPP",
     .kind = SB_CONTENT_TEXT,
     .content = "\"hi\"",
     .ttl = 315576000000L,
     .metadata = "",
     .dedupe_key = "k",
     .dedupe_window = 3600},

    /* ---- refused before it is a command: "id": null ---- */
    BAD("P/send: a number", NULL, "42", INVALID, "", "JSON object"),
    BAD("P/send: broken JSON", NULL, "{oops", INVALID, "", "bad JSON"),
    BAD("P/send: an array", NULL, "[{\"to\":\"mom\",\"text\":\"hi\"}]", INVALID, "", NULL),
    BAD("P/send: a string", NULL, "\"hi\"", INVALID, "", NULL),
    BAD("P/send: plain text", NULL, "Freezer 3 is at -4 C", INVALID, "", NULL),
    BAD("P/send: empty", NULL, "", INVALID, "", NULL),
    BAD("P/send: duplicate key", NULL, "{\"to\":\"mom\",\"to\":\"+15551234567\",\"text\":\"hi\"}",
        INVALID, "", "duplicate"),
    BAD("topic: duplicate key", "mom", "{\"text\":\"a\",\"text\":\"b\"}", INVALID, "", "duplicate"),
    BAD("topic: \\u0000 in a command", "mom", " {\"text\":\"a\\u0000b\"}", INVALID, "", "bad JSON"),
    BAD("topic: \\u0000 in a key", "mom", "{\"te\\u0000xt\":\"a\"}", INVALID, "", "bad JSON"),
    BAD("topic: a number out of range in a command", "mom", "{\"text\":\"a\",\"ttl\":1e999}",
        INVALID, "", "bad JSON"),
    BAD("P/send: \\u0000", NULL, "{\"to\":\"mom\",\"text\":\"a\\u0000b\"}", INVALID, "",
        "bad JSON"),
    BAD("P/send: a number out of range", NULL,
        "{\"to\":\"mom\",\"text\":\"a\",\"ttl\":99999999999999999999}", INVALID, "", "bad JSON"),
    {.name = "NUL byte",
     .payload = "{\"to\":\"mom\",\"text\":\"a\0b\"}",
     .len = sizeof("{\"to\":\"mom\",\"text\":\"a\0b\"}") - 1,
     .code = INVALID,
     .id = "",
     .msg = "NUL"},
    {.name = "topic, NUL byte",
     .topic = "mom",
     .payload = "a\0b",
     .len = sizeof("a\0b") - 1,
     .code = INVALID,
     .id = "",
     .msg = "NUL"},
    BAD("overlong /", "mom", "a\xc0\xaf", INVALID, "", "UTF-8"),
    BAD("overlong 3 bytes", NULL, "{\"to\":\"mom\",\"text\":\"\xe0\x80\xaf\"}", INVALID, "",
        "UTF-8"),
    BAD("overlong 4 bytes", "mom", "\xf0\x82\x82\xac", INVALID, "", "UTF-8"),
    BAD("surrogate", "mom", "\xed\xa0\x80", INVALID, "", "UTF-8"),
    BAD("truncated", "mom", "euro \xe2\x82", INVALID, "", "UTF-8"),
    BAD("past U+10FFFF", "mom", "\xf4\x90\x80\x80", INVALID, "", "UTF-8"),
    BAD("stray continuation", "mom", "\x80", INVALID, "", "UTF-8"),
    BAD("Latin-1", "mom", "Fr\xe4s", INVALID, "", "UTF-8"),
    /* ---- refused commands ---- */
    BAD("id too long", NULL,
        "{\"id\":\"01234567890123456789012345678901234567890123456789012345678901234\","
        "\"to\":\"mom\",\"text\":\"hi\"}",
        INVALID, GEN_ID, "id:"),
    BAD("id with a space", NULL, "{\"id\":\"a b\",\"to\":\"mom\",\"text\":\"hi\"}", INVALID, GEN_ID,
        "id:"),
    BAD("id with a slash", NULL, "{\"id\":\"a/b\",\"to\":\"mom\",\"text\":\"hi\"}", INVALID, GEN_ID,
        "id:"),
    BAD("id empty", NULL, "{\"id\":\"\",\"to\":\"mom\",\"text\":\"hi\"}", INVALID, GEN_ID, "id:"),
    BAD("id a number", NULL, "{\"id\":42,\"to\":\"mom\",\"text\":\"hi\"}", INVALID, GEN_ID, "id:"),
    BAD("unknown field", NULL, "{\"id\":\"u1\",\"to\":\"mom\",\"txt\":\"hi\"}", INVALID, "u1",
        "txt: unknown field"),
    BAD("unknown field beside a good command", NULL,
        "{\"to\":\"mom\",\"text\":\"hi\",\"priority\":\"high\"}", INVALID, GEN_ID,
        "priority: unknown field"),
    BAD("topic command with to", "mom", "{\"to\":\"+15551234567\",\"text\":\"hi\"}", INVALID,
        GEN_ID, "to:"),
    BAD("topic command with contact_id", "mom", "{\"contact_id\":\"01J\",\"text\":\"hi\"}", INVALID,
        GEN_ID, "contact_id:"),
    BAD("to and contact_id", NULL, "{\"to\":\"mom\",\"contact_id\":\"01J\",\"text\":\"hi\"}",
        INVALID, GEN_ID, "not both"),
    BAD("neither to nor contact_id", NULL, "{\"id\":\"n1\",\"text\":\"hi\"}", INVALID, "n1",
        "to or contact_id is required"),
    BAD("to a number", NULL, "{\"to\":46701234567,\"text\":\"hi\"}", INVALID, GEN_ID, "to:"),
    BAD("to too short", NULL, "{\"to\":\"+1234567\",\"text\":\"hi\"}", RECIPIENT, GEN_ID, "to:"),
    BAD("to too long", NULL, "{\"to\":\"+4670123456789012\",\"text\":\"hi\"}", RECIPIENT, GEN_ID,
        "to:"),
    BAD("to starting with 0", NULL, "{\"to\":\"0046701234567\",\"text\":\"hi\"}", RECIPIENT, GEN_ID,
        NULL),
    BAD("to with spaces", NULL, "{\"to\":\"+46 70 123 45 67\",\"text\":\"hi\"}", RECIPIENT, GEN_ID,
        NULL),
    BAD("to empty", NULL, "{\"to\":\"\",\"text\":\"hi\"}", RECIPIENT, GEN_ID, NULL),
    BAD("to an unknown alias", NULL, "{\"to\":\"dad\",\"text\":\"hi\"}", RECIPIENT, GEN_ID,
        "\"dad\""),
    BAD("contact_id empty", NULL, "{\"contact_id\":\"\",\"text\":\"hi\"}", RECIPIENT, GEN_ID,
        "contact_id:"),
    BAD("contact_id a number", NULL, "{\"contact_id\":7,\"text\":\"hi\"}", INVALID, GEN_ID,
        "contact_id:"),
    BAD("topic too short", "1234567", "hi", RECIPIENT, GEN_ID, "topic"),
    BAD("topic unknown alias", "dad", "hi", RECIPIENT, GEN_ID, "\"dad\""),
    BAD("topic unknown alias, command", "dad", "{\"id\":\"d1\",\"text\":\"hi\"}", RECIPIENT, "d1",
        NULL),
    {.name = "not allowed: number",
     .payload = "{\"to\":\"+4915112345678\",\"text\":\"hi\"}",
     .code = NOT_ALLOW,
     .id = GEN_ID,
     .msg = "BRIDGE_ALLOW_TO",
     .to = "+4915112345678"},
    {.name = "not allowed: alias",
     .payload = "{\"to\":\"far\",\"text\":\"hi\"}",
     .code = NOT_ALLOW,
     .id = GEN_ID,
     .to = "+4915112345678",
     .alias = "far"},
    {.name = "not allowed: topic",
     .topic = "4915112345678",
     .payload = "hi",
     .code = NOT_ALLOW,
     .id = GEN_ID,
     .to = "+4915112345678"},
    BAD("channel and channels", NULL,
        "{\"to\":\"mom\",\"channel\":\"SMS\",\"channels\":[\"SMS\"],\"text\":\"hi\"}", INVALID,
        GEN_ID, "not both"),
    BAD("channels empty", NULL, "{\"to\":\"mom\",\"channels\":[],\"text\":\"hi\"}", INVALID, GEN_ID,
        "channels:"),
    BAD("channels of 9", NULL,
        "{\"to\":\"mom\",\"channels\":[\"A\",\"B\",\"C\",\"D\",\"E\",\"F\",\"G\",\"H\",\"I\"],"
        "\"text\":\"hi\"}",
        INVALID, GEN_ID, "channels:"),
    BAD("channels a string", NULL, "{\"to\":\"mom\",\"channels\":\"SMS\",\"text\":\"hi\"}", INVALID,
        GEN_ID, "channels:"),
    BAD("channels twice the same", NULL,
        "{\"to\":\"mom\",\"channels\":[\"SMS\",\"WHATSAPP\",\"sms\"],\"text\":\"hi\"}", INVALID,
        GEN_ID, "channels[2]: SMS is listed twice"),
    BAD("channels with a number", NULL, "{\"to\":\"mom\",\"channels\":[\"SMS\",5],\"text\":\"h\"}",
        INVALID, GEN_ID, "channels[1]"),
    BAD("channel empty", NULL, "{\"to\":\"mom\",\"channel\":\"\",\"text\":\"hi\"}", INVALID, GEN_ID,
        "channel:"),
    BAD("channel with a space", NULL, "{\"to\":\"mom\",\"channel\":\"WHATS APP\",\"text\":\"h\"}",
        INVALID, GEN_ID, "channel:"),
    BAD("channel with a digit", NULL, "{\"to\":\"mom\",\"channel\":\"SMS2\",\"text\":\"h\"}",
        INVALID, GEN_ID, "channel:"),
    BAD("channel a number", NULL, "{\"to\":\"mom\",\"channel\":1,\"text\":\"hi\"}", INVALID, GEN_ID,
        "channel:"),
    BAD("no content", NULL, "{\"to\":\"mom\"}", INVALID, GEN_ID,
        "one of text, media, template, choice, location, message is required"),
    BAD("two contents", NULL,
        "{\"to\":\"mom\",\"text\":\"hi\",\"media\":{\"url\":\"https://x.example/a\"}}", INVALID,
        GEN_ID, "text, media: give exactly one"),
    BAD("three contents", NULL,
        "{\"to\":\"mom\",\"text\":\"hi\",\"location\":{\"lat\":1,\"lon\":2},\"message\":{}}",
        INVALID, GEN_ID, "text, location, message"),
    BAD("text empty", NULL, "{\"to\":\"mom\",\"text\":\"\"}", INVALID, GEN_ID, "text:"),
    BAD("text null", NULL, "{\"to\":\"mom\",\"text\":null}", INVALID, GEN_ID, "text:"),
    BAD("text a number", NULL, "{\"to\":\"mom\",\"text\":5}", INVALID, GEN_ID, "text:"),
    BAD("topic, empty text", "mom", "", INVALID, GEN_ID, "text:"),
    BAD("media a string", NULL, "{\"to\":\"mom\",\"media\":\"https://x.example/a\"}", INVALID,
        GEN_ID, "media:"),
    BAD("media without url", NULL, "{\"to\":\"mom\",\"media\":{\"caption\":\"c\"}}", INVALID,
        GEN_ID, "media.url: is required"),
    BAD("media ftp url", NULL, "{\"to\":\"mom\",\"media\":{\"url\":\"ftp://x.example/a\"}}",
        INVALID, GEN_ID, "media.url:"),
    BAD("media url with a space", NULL,
        "{\"to\":\"mom\",\"media\":{\"url\":\"https://x.example/a b\"}}", INVALID, GEN_ID,
        "media.url:"),
    BAD("media url a number", NULL, "{\"to\":\"mom\",\"media\":{\"url\":5}}", INVALID, GEN_ID,
        "media.url:"),
    BAD("media caption a number", NULL,
        "{\"to\":\"mom\",\"media\":{\"url\":\"https://x.example/a\",\"caption\":5}}", INVALID,
        GEN_ID, "media.caption:"),
    BAD("media caption empty", NULL,
        "{\"to\":\"mom\",\"media\":{\"url\":\"https://x.example/a\",\"caption\":\"\"}}", INVALID,
        GEN_ID, "media.caption:"),
    BAD("media misspelt field", NULL,
        "{\"to\":\"mom\",\"media\":{\"url\":\"https://x.example/a\",\"capton\":\"c\"}}", INVALID,
        GEN_ID, "media.capton: unknown field"),
    BAD("template without id", NULL, "{\"to\":\"mom\",\"template\":{\"language\":\"en\"}}", INVALID,
        GEN_ID, "template.id: is required"),
    BAD("template id empty", NULL,
        "{\"to\":\"mom\",\"template\":{\"id\":\"\",\"language\":\"en\"}}", INVALID, GEN_ID,
        "template.id:"),
    BAD("template WhatsApp without language", NULL, "{\"to\":\"mom\",\"template\":{\"id\":\"t\"}}",
        INVALID, GEN_ID, "template.language: is required"),
    BAD("template WhatsApp en-US", NULL,
        "{\"to\":\"mom\",\"template\":{\"id\":\"t\",\"language\":\"en-US\"}}", INVALID, GEN_ID,
        "use en_US"),
    BAD("template WhatsApp english", NULL,
        "{\"to\":\"mom\",\"template\":{\"id\":\"t\",\"language\":\"english\"}}", INVALID, GEN_ID,
        "template.language:"),
    BAD("template WhatsApp en_us", NULL,
        "{\"to\":\"mom\",\"template\":{\"id\":\"t\",\"language\":\"en_us\"}}", INVALID, GEN_ID,
        "template.language:"),
    BAD("template version empty", NULL,
        "{\"to\":\"mom\",\"template\":{\"id\":\"t\",\"language\":\"en\",\"version\":\"\"}}",
        INVALID, GEN_ID, "template.version:"),
    BAD("template params a list", NULL,
        "{\"to\":\"mom\",\"template\":{\"id\":\"t\",\"language\":\"en\",\"params\":[\"a\"]}}",
        INVALID, GEN_ID, "template.params:"),
    BAD("template param a number", NULL,
        "{\"to\":\"mom\",\"template\":{\"id\":\"t\",\"language\":\"en\",\"params\":{\"n\":1}}}",
        INVALID, GEN_ID, "template.params.n: must be a string"),
    BAD("template misspelt field", NULL,
        "{\"to\":\"mom\",\"template\":{\"id\":\"t\",\"language\":\"en\",\"param\":{}}}", INVALID,
        GEN_ID, "template.param: unknown field"),
    BAD("fallback_template WhatsApp without language", NULL,
        "{\"to\":\"mom\",\"text\":\"hi\",\"fallback_template\":{\"id\":\"t\"}}", INVALID, GEN_ID,
        "fallback_template.language: is required"),
    BAD("fallback_template a string", NULL,
        "{\"to\":\"mom\",\"text\":\"hi\",\"fallback_template\":\"t\"}", INVALID, GEN_ID,
        "fallback_template:"),
    BAD("choice a list", NULL, "{\"to\":\"mom\",\"choice\":[\"a\"]}", INVALID, GEN_ID, "choice:"),
    BAD("choice without text", NULL, "{\"to\":\"mom\",\"choice\":{\"options\":[\"a\"]}}", INVALID,
        GEN_ID, "choice.text: is required"),
    BAD("choice text empty", NULL,
        "{\"to\":\"mom\",\"choice\":{\"text\":\"\",\"options\":[\"a\"]}}", INVALID, GEN_ID,
        "choice.text:"),
    BAD("choice without options", NULL, "{\"to\":\"mom\",\"choice\":{\"text\":\"t\"}}", INVALID,
        GEN_ID, "choice.options: is required"),
    BAD("choice no options", NULL, "{\"to\":\"mom\",\"choice\":{\"text\":\"t\",\"options\":[]}}",
        INVALID, GEN_ID, "choice.options:"),
    BAD("choice options a string", NULL,
        "{\"to\":\"mom\",\"choice\":{\"text\":\"t\",\"options\":\"a\"}}", INVALID, GEN_ID,
        "choice.options:"),
    BAD("choice WhatsApp: 4 options", NULL,
        "{\"to\":\"mom\",\"choice\":{\"text\":\"t\",\"options\":[\"a\",\"b\",\"c\",\"d\"]}}",
        INVALID, GEN_ID, "on WhatsApp"),
    BAD("choice SMS: 11 options", NULL,
        "{\"to\":\"mom\",\"channel\":\"SMS\",\"choice\":{\"text\":\"t\",\"options\":[\"1\",\"2\","
        "\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\"]}}",
        INVALID, GEN_ID, "1 to 10 options"),
    BAD("choice WhatsApp: option of 21 characters", NULL,
        "{\"to\":\"mom\",\"choice\":{\"text\":\"t\",\"options\":[\"ok\","
        "\"123456789012345678901\"]}}",
        INVALID, GEN_ID, "choice.options[1]: at most 20 characters on WhatsApp"),
    BAD("choice option empty", NULL,
        "{\"to\":\"mom\",\"choice\":{\"text\":\"t\",\"options\":[\"a\",\"\"]}}", INVALID, GEN_ID,
        "choice.options[1]:"),
    BAD("choice option a number", NULL,
        "{\"to\":\"mom\",\"choice\":{\"text\":\"t\",\"options\":[1]}}", INVALID, GEN_ID,
        "choice.options[0]:"),
    BAD("choice misspelt field", NULL,
        "{\"to\":\"mom\",\"choice\":{\"text\":\"t\",\"option\":[\"a\"]}}", INVALID, GEN_ID,
        "choice.option: unknown field"),
    BAD("location lat 91", NULL, "{\"to\":\"mom\",\"location\":{\"lat\":91,\"lon\":0}}", INVALID,
        GEN_ID, "location.lat:"),
    BAD("location lon -180.5", NULL, "{\"to\":\"mom\",\"location\":{\"lat\":0,\"lon\":-180.5}}",
        INVALID, GEN_ID, "location.lon:"),
    BAD("location lat a string", NULL,
        "{\"to\":\"mom\",\"location\":{\"lat\":\"59.3\",\"lon\":18}}", INVALID, GEN_ID,
        "location.lat:"),
    BAD("location without lon", NULL, "{\"to\":\"mom\",\"location\":{\"lat\":59}}", INVALID, GEN_ID,
        "location.lon: is required"),
    BAD("location title a number", NULL,
        "{\"to\":\"mom\",\"location\":{\"lat\":1,\"lon\":2,\"title\":3}}", INVALID, GEN_ID,
        "location.title:"),
    BAD("location misspelt field", NULL, "{\"to\":\"mom\",\"location\":{\"lat\":1,\"lng\":2}}",
        INVALID, GEN_ID, "location.lng: unknown field"),
    BAD("location a list", NULL, "{\"to\":\"mom\",\"location\":[1,2]}", INVALID, GEN_ID,
        "location:"),
    BAD("message a string", NULL, "{\"to\":\"mom\",\"message\":\"hi\"}", INVALID, GEN_ID,
        "message:"),
    BAD("message without content", NULL, "{\"to\":\"mom\",\"message\":{\"agent\":{}}}", INVALID,
        GEN_ID, "message: needs one of"),
    BAD("message with two contents", NULL,
        "{\"to\":\"mom\",\"message\":{\"text_message\":{\"text\":\"a\"},\"media_message\":"
        "{\"url\":\"https://x.example/a\"}}}",
        INVALID, GEN_ID, "text_message and media_message"),
    BAD("message content not an object", NULL,
        "{\"to\":\"mom\",\"message\":{\"text_message\":\"hi\"}}", INVALID, GEN_ID,
        "message.text_message:"),
    BAD("ttl 0", NULL, "{\"to\":\"mom\",\"text\":\"hi\",\"ttl\":0}", INVALID, GEN_ID, "ttl:"),
    BAD("ttl negative", NULL, "{\"to\":\"mom\",\"text\":\"hi\",\"ttl\":-5}", INVALID, GEN_ID,
        "ttl:"),
    BAD("ttl a fraction", NULL, "{\"to\":\"mom\",\"text\":\"hi\",\"ttl\":1.5}", INVALID, GEN_ID,
        "ttl:"),
    BAD("ttl a string", NULL, "{\"to\":\"mom\",\"text\":\"hi\",\"ttl\":\"60\"}", INVALID, GEN_ID,
        "ttl:"),
    BAD("ttl too large", NULL, "{\"to\":\"mom\",\"text\":\"hi\",\"ttl\":315576000001}", INVALID,
        GEN_ID, "ttl:"),
    BAD("metadata a number", NULL, "{\"to\":\"mom\",\"text\":\"hi\",\"metadata\":5}", INVALID,
        GEN_ID, "metadata:"),
    BAD("metadata an object", NULL, "{\"to\":\"mom\",\"text\":\"hi\",\"metadata\":{}}", INVALID,
        GEN_ID, "metadata:"),
    BAD("dedupe_key empty", NULL, "{\"to\":\"mom\",\"text\":\"hi\",\"dedupe_key\":\"\"}", INVALID,
        GEN_ID, "dedupe_key:"),
    BAD("dedupe_window without a key", NULL,
        "{\"to\":\"mom\",\"text\":\"hi\",\"dedupe_window\":60}", INVALID, GEN_ID,
        "dedupe_window: needs a dedupe_key"),
    BAD("dedupe_window 0", NULL,
        "{\"to\":\"mom\",\"text\":\"hi\",\"dedupe_key\":\"k\",\"dedupe_window\":0}", INVALID,
        GEN_ID, "dedupe_window:"),
    BAD("dedupe_window over a year", NULL,
        "{\"to\":\"mom\",\"text\":\"hi\",\"dedupe_key\":\"k\",\"dedupe_window\":31536001}", INVALID,
        GEN_ID, "dedupe_window:"),
    BAD("dedupe_window a string", NULL,
        "{\"to\":\"mom\",\"text\":\"hi\",\"dedupe_key\":\"k\",\"dedupe_window\":\"60\"}", INVALID,
        GEN_ID, "dedupe_window:"),

};

/* A JSON value in one canonical form (sorted keys, compact) for comparing. New string. */
static char *canon(const json_t *v)
{
    return v ? json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

/* Whether value v is the JSON text `expected`. */
static bool json_is(const json_t *v, const char *expected, const char *name, const char *what)
{
    json_t *want = json_loads(expected, JSON_DECODE_ANY, NULL);
    bool same = want && v && json_equal(v, want);

    if (!same) {
        char *got = canon(v);
        fprintf(stderr, "%s: %s: got %s, want %s\n", name, what, got ? got : "(null)", expected);
        free(got);
    }
    json_decref(want);
    return same;
}

static char *joined(const json_t *channels)
{
    static char buf[256];

    buf[0] = '\0';
    for (size_t i = 0; i < json_array_size(channels); i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "," : "",
                 json_string_value(json_array_get(channels, i)));
    }
    return buf;
}

static bool streq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void run_row(const struct row *r)
{
    struct sb_command cmd;
    struct sb_command_error err;
    size_t len = r->len ? r->len : strlen(r->payload);
    enum sb_err rc =
        sb_command_parse(r->cfg ? r->cfg : &cfg_wa, r->topic, r->payload, len, GEN_ID, &cmd, &err);

    if (r->code) {
        CHECKF(rc == SB_E_INVAL, "%s: rc %d", r->name, rc);
        CHECKF(streq(err.code, r->code), "%s: code %s, want %s", r->name,
               err.code ? err.code : "(null)", r->code);
        CHECKF(err.message[0] != '\0', "%s: no message", r->name);
        CHECKF(sb_utf8_valid(err.message, strlen(err.message)), "%s: message not UTF-8", r->name);
        if (r->msg) {
            CHECKF(strstr(err.message, r->msg) != NULL, "%s: message \"%s\" lacks \"%s\"", r->name,
                   err.message, r->msg);
        }
    } else {
        CHECKF(rc == SB_OK, "%s: rc %d: %s: %s", r->name, rc, err.code ? err.code : "",
               err.message);
    }
    CHECKF(strcmp(cmd.id, r->id) == 0, "%s: id \"%s\", want \"%s\"", r->name, cmd.id, r->id);
    if (r->to || !r->code) {
        CHECKF(streq(cmd.to, r->to), "%s: to %s, want %s", r->name, cmd.to ? cmd.to : "(null)",
               r->to ? r->to : "(null)");
    }
    if (r->alias || !r->code) {
        CHECKF(streq(cmd.alias, r->alias), "%s: alias %s", r->name,
               cmd.alias ? cmd.alias : "(null)");
    }
    if (!r->code) {
        CHECKF(streq(cmd.contact_id, r->contact_id), "%s: contact_id", r->name);
        CHECKF(json_array_size(cmd.channels) >= 1, "%s: no channel", r->name);
        CHECKF(cmd.content != NULL, "%s: no content", r->name);
        if (r->channels) {
            CHECKF(strcmp(joined(cmd.channels), r->channels) == 0, "%s: channels %s, want %s",
                   r->name, joined(cmd.channels), r->channels);
        }
        if (r->kind != 0 || r->content) {
            CHECKF((int)cmd.kind == r->kind, "%s: kind %d, want %d", r->name, (int)cmd.kind,
                   r->kind);
        }
        if (r->content) {
            CHECK(json_is(cmd.content, r->content, r->name, "content"));
        }
        CHECKF(cmd.ttl == r->ttl, "%s: ttl %ld", r->name, cmd.ttl);
        CHECKF(streq(cmd.metadata, r->metadata), "%s: metadata", r->name);
        CHECKF(streq(cmd.dedupe_key, r->dedupe_key), "%s: dedupe_key", r->name);
        CHECKF(cmd.dedupe_window == r->dedupe_window, "%s: dedupe_window %ld", r->name,
               cmd.dedupe_window);
        if (r->fallback) {
            CHECK(json_is(cmd.fallback_template, r->fallback, r->name, "fallback_template"));
        } else {
            CHECKF(cmd.fallback_template == NULL, "%s: fallback_template", r->name);
        }
    }
    sb_command_clear(&cmd);
    CHECKF(cmd.to == NULL && cmd.content == NULL && cmd.channels == NULL, "%s: clear", r->name);
}

/* A payload of `n` bytes: {"to":"mom","channel":"SMS","text":"aaa..."}. New string. */
static char *sized_payload(size_t n)
{
    static const char head[] = "{\"to\":\"mom\",\"channel\":\"SMS\",\"text\":\"";
    size_t fixed = sizeof(head) - 1 + 2;
    char *s = malloc(n + 1);

    memcpy(s, head, sizeof(head) - 1);
    memset(s + sizeof(head) - 1, 'a', n - fixed);
    memcpy(s + n - 2, "\"}", 3);
    return s;
}

/* `n` copies of the 3-byte character U+20AC (euro sign) in a JSON string. New string. */
static char *euros(const char *before, size_t n, const char *after)
{
    size_t size = strlen(before) + 3 * n + strlen(after) + 1;
    char *s = malloc(size);
    size_t pos = (size_t)snprintf(s, size, "%s", before);

    for (size_t i = 0; i < n; i++) {
        pos += (size_t)snprintf(s + pos, size - pos, "\xe2\x82\xac");
    }
    snprintf(s + pos, size - pos, "%s", after);
    return s;
}

static void expect(const struct sb_config *cfg, const char *topic, const char *payload, size_t len,
                   const char *code, const char *id, const char *name)
{
    struct sb_command cmd;
    struct sb_command_error err;
    enum sb_err rc = sb_command_parse(cfg, topic, payload, len, GEN_ID, &cmd, &err);

    if (code) {
        CHECKF(rc == SB_E_INVAL && streq(err.code, code), "%s: rc %d code %s, want %s", name, rc,
               err.code ? err.code : "(null)", code);
    } else {
        CHECKF(rc == SB_OK, "%s: rc %d: %s", name, rc, err.message);
    }
    CHECKF(strcmp(cmd.id, id) == 0, "%s: id \"%s\", want \"%s\"", name, cmd.id, id);
    sb_command_clear(&cmd);
}

/* Rows too large to write out: size and length limits at their edges. */
static void test_limits(void)
{
    char *s;
    char meta[1100];
    char buf[1200];
    struct sb_command cmd;
    struct sb_command_error err;

    s = sized_payload(SB_COMMAND_MAX_BYTES);
    expect(&cfg_wa, NULL, s, SB_COMMAND_MAX_BYTES, NULL, GEN_ID, "64 KiB exactly");
    free(s);
    s = sized_payload(SB_COMMAND_MAX_BYTES + 1);
    expect(&cfg_wa, NULL, s, SB_COMMAND_MAX_BYTES + 1, "invalid_command", "", "64 KiB + 1");
    free(s);
    s = malloc(SB_COMMAND_MAX_BYTES + 1);
    memset(s, 'a', SB_COMMAND_MAX_BYTES + 1);
    expect(&cfg_sms, "mom", s, SB_COMMAND_MAX_BYTES, NULL, GEN_ID, "plain text of 64 KiB");
    expect(&cfg_sms, "mom", s, SB_COMMAND_MAX_BYTES + 1, "invalid_command", "",
           "plain text of 64 KiB + 1");
    /* WhatsApp counts characters, not bytes: 4096 three-byte characters pass. */
    expect(&cfg_wa, "mom", s, 4096, NULL, GEN_ID, "plain text of 4096 on WhatsApp");
    expect(&cfg_wa, "mom", s, 4097, "invalid_command", GEN_ID, "plain text of 4097 on WhatsApp");
    free(s);
    s = euros("{\"to\":\"mom\",\"text\":\"", 4096, "\"}");
    expect(&cfg_wa, NULL, s, strlen(s), NULL, GEN_ID, "4096 euro signs on WhatsApp");
    free(s);
    s = euros("{\"to\":\"mom\",\"text\":\"", 4097, "\"}");
    expect(&cfg_wa, NULL, s, strlen(s), "invalid_command", GEN_ID, "4097 euro signs on WhatsApp");
    free(s);
    s = euros("{\"to\":\"mom\",\"channel\":\"SMS\",\"text\":\"", 5000, "\"}");
    expect(&cfg_wa, NULL, s, strlen(s), NULL, GEN_ID, "5000 euro signs on SMS");
    free(s);
    s = euros("{\"to\":\"mom\",\"choice\":{\"text\":\"t\",\"options\":[\"", 20, "\"]}}");
    expect(&cfg_wa, NULL, s, strlen(s), NULL, GEN_ID, "option of 20 euro signs");
    free(s);
    s = euros("{\"to\":\"mom\",\"choice\":{\"text\":\"t\",\"options\":[\"", 21, "\"]}}");
    expect(&cfg_wa, NULL, s, strlen(s), "invalid_command", GEN_ID, "option of 21 euro signs");
    free(s);

    /* dedupe_key: 256 characters. */
    memset(meta, 'k', 257);
    meta[256] = '\0';
    snprintf(buf, sizeof(buf), "{\"to\":\"mom\",\"text\":\"hi\",\"dedupe_key\":\"%s\"}", meta);
    expect(&cfg_wa, NULL, buf, strlen(buf), NULL, GEN_ID, "dedupe_key of 256");
    meta[256] = 'k';
    meta[257] = '\0';
    snprintf(buf, sizeof(buf), "{\"to\":\"mom\",\"text\":\"hi\",\"dedupe_key\":\"%s\"}", meta);
    expect(&cfg_wa, NULL, buf, strlen(buf), "invalid_command", GEN_ID, "dedupe_key of 257");

    /* metadata: {"id":"m1","metadata":"..."} is 25 characters around it, so 999 fit. */
    memset(meta, 'x', 999);
    meta[999] = '\0';
    snprintf(buf, sizeof(buf), "{\"id\":\"m1\",\"to\":\"mom\",\"text\":\"hi\",\"metadata\":\"%s\"}",
             meta);
    expect(&cfg_wa, NULL, buf, strlen(buf), NULL, "m1", "metadata that just fits");
    meta[999] = 'x';
    meta[1000] = '\0';
    snprintf(buf, sizeof(buf), "{\"id\":\"m1\",\"to\":\"mom\",\"text\":\"hi\",\"metadata\":\"%s\"}",
             meta);
    expect(&cfg_wa, NULL, buf, strlen(buf), "invalid_command", "m1", "metadata one too long");
    /* A quote in metadata is escaped in message_metadata: 999 characters with one quote make
     * 1000 there, one too many. */
    meta[998] = '\\';
    meta[999] = '"';
    meta[1000] = '\0';
    snprintf(buf, sizeof(buf), "{\"id\":\"m1\",\"to\":\"mom\",\"text\":\"hi\",\"metadata\":\"%s\"}",
             meta);
    expect(&cfg_wa, NULL, buf, strlen(buf), "invalid_command", "m1", "metadata with a quote");

    /* An error message quoting a long alias stays short and valid UTF-8. */
    s = euros("{\"to\":\"", 200, "\",\"text\":\"hi\"}");
    CHECK(sb_command_parse(&cfg_wa, NULL, s, strlen(s), GEN_ID, &cmd, &err) == SB_E_INVAL);
    CHECK_STR(err.code, "invalid_recipient");
    CHECK(sb_utf8_valid(err.message, strlen(err.message)));
    CHECK(strstr(err.message, "...") != NULL);
    sb_command_clear(&cmd);
    free(s);

    /* jansson's message quotes the payload and may cut a character in two: still UTF-8. */
    s = euros("{\"to\":\"mom\",\"text\":\"", 200, "");
    CHECK(sb_command_parse(&cfg_wa, NULL, s, strlen(s), GEN_ID, &cmd, &err) == SB_E_INVAL);
    CHECK_STR(err.code, "invalid_command");
    CHECK_STR(cmd.id, "");
    CHECK(sb_utf8_valid(err.message, strlen(err.message)));
    sb_command_clear(&cmd);
    free(s);

    /* Nested deeper than jansson goes: a bad command on the topic too, not a text. */
    size_t depth = 5000;
    s = malloc(5 + 2 * depth + 2);
    memcpy(s, "{\"a\":", 5);
    memset(s + 5, '[', depth);
    memset(s + 5 + depth, ']', depth);
    memcpy(s + 5 + 2 * depth, "}", 2);
    expect(&cfg_wa, "mom", s, strlen(s), "invalid_command", "", "nested too deep");
    free(s);

    /* An empty MQTT message may come as NULL. */
    expect(&cfg_wa, "mom", NULL, 0, "invalid_command", GEN_ID, "NULL payload on the topic");
    expect(&cfg_wa, NULL, NULL, 0, "invalid_command", "", "NULL payload on P/send");

    /* A NULL gen_id gives "" rather than a crash. */
    CHECK(sb_command_parse(&cfg_wa, "mom", "hi", 2, NULL, &cmd, &err) == SB_OK);
    CHECK_STR(cmd.id, "");
    sb_command_clear(&cmd);
    sb_command_clear(&cmd); /* twice is fine */
    sb_command_clear(NULL);
}

struct utf8_row {
    const char *s;
    size_t len;
    bool valid;
};

static void test_utf8(void)
{
    static const struct utf8_row utf8[] = {
        {"", 0, true},
        {"plain ASCII", 0, true},
        {"\xc3\xa4", 0, true},                   /* U+00E4 */
        {"\xc2\x80", 0, true},                   /* U+0080, the smallest 2-byte */
        {"\xdf\xbf", 0, true},                   /* U+07FF */
        {"\xe0\xa0\x80", 0, true},               /* U+0800, the smallest 3-byte */
        {"\xe2\x82\xac", 0, true},               /* U+20AC */
        {"\xed\x9f\xbf", 0, true},               /* U+D7FF, just below the surrogates */
        {"\xee\x80\x80", 0, true},               /* U+E000, just above them */
        {"\xef\xbf\xbf", 0, true},               /* U+FFFF */
        {"\xf0\x90\x80\x80", 0, true},           /* U+10000 */
        {"\xf0\x9f\xa7\x8a", 0, true},           /* U+1F9CA */
        {"\xf4\x8f\xbf\xbf", 0, true},           /* U+10FFFF, the last */
        {"a\0b", 3, true},                       /* NUL is UTF-8; the parser refuses it */
        {"\x80", 0, false},                      /* a continuation byte alone */
        {"\xbf", 0, false},                      /* another */
        {"\xc0\x80", 0, false},                  /* overlong NUL */
        {"\xc1\xbf", 0, false},                  /* overlong 2-byte */
        {"\xe0\x80\x80", 0, false},              /* overlong 3-byte */
        {"\xe0\x9f\xbf", 0, false},              /* overlong U+07FF */
        {"\xf0\x80\x80\x80", 0, false},          /* overlong 4-byte */
        {"\xf0\x8f\xbf\xbf", 0, false},          /* overlong U+FFFF */
        {"\xed\xa0\x80", 0, false},              /* U+D800 */
        {"\xed\xbf\xbf", 0, false},              /* U+DFFF */
        {"\xed\xa0\xbd\xed\xb8\x80", 0, false},  /* a CESU-8 surrogate pair */
        {"\xf4\x90\x80\x80", 0, false},          /* U+110000 */
        {"\xf5\x80\x80\x80", 0, false},          /* F5 never starts a character */
        {"\xff", 0, false},                      /* nor does FF */
        {"\xc3", 0, false},                      /* truncated 2-byte */
        {"\xe2\x82", 0, false},                  /* truncated 3-byte */
        {"\xf0\x9f\xa7", 0, false},              /* truncated 4-byte */
        {"\xc3\x41", 0, false},                  /* not a continuation */
        {"\xe2\x28\xa1", 0, false},              /* not a continuation in the middle */
        {"ok \xe2\x82\xac then \xc3", 0, false}, /* bad at the very end */
    };

    for (size_t i = 0; i < sizeof(utf8) / sizeof(utf8[0]); i++) {
        size_t len = utf8[i].len ? utf8[i].len : strlen(utf8[i].s);
        CHECKF(sb_utf8_valid(utf8[i].s, len) == utf8[i].valid, "utf8 row %zu", i);
    }
    /* A length shorter than the string: the cut is what counts. */
    CHECK(!sb_utf8_valid("\xe2\x82\xac", 2));
    CHECK(sb_utf8_valid("\xe2\x82\xac\xc3", 3));
    CHECK(sb_utf8_valid(NULL, 0));
}

static void test_postback(void)
{
    char *s = sb_command_postback("freezer-alarm-42", 0, "Acknowledge");

    CHECK_STR(s, "freezer-alarm-42|0|Acknowledge");
    free(s);
    s = sb_command_postback("c1", 9, "Snooze | 1 h \xe2\x82\xac");
    CHECK_STR(s, "c1|9|Snooze | 1 h \xe2\x82\xac");
    free(s);
    s = sb_command_postback("", 12, "");
    CHECK_STR(s, "|12|");
    free(s);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        run_row(&rows[i]);
    }
    test_limits();
    test_utf8();
    test_postback();
    return check_report();
}
