/* The simulator's messages:send validator against a table of good and bad bodies: each row names
 * the status and the field path of the first violation. sim_validate.c is a pure function, so it
 * is compiled straight into this test rather than linked from the sinch-sim executable. */
#include "check.h"

#include "../sim/sim_validate.c" /* NOLINT(bugprone-suspicious-include): on purpose */

#define RECIPIENT                                                                                  \
    "\"recipient\":{\"identified_by\":{\"channel_identities\":[{\"channel\":\"WHATSAPP\","         \
    "\"identity\":\"46701234567\"}]}}"
/* A valid envelope around `msg` (the message object), with `extra` top-level fields. */
#define ENV(msg, extra) "{\"app_id\":\"sim-app\"," RECIPIENT ",\"message\":" msg extra "}"
#define TEXT            "{\"text_message\":{\"text\":\"Freezer 3 is at -4 C\"}}"
#define WA_TEMPLATE(ref)                                                                           \
    ENV("{\"template_message\":{\"channel_template\":{\"WHATSAPP\":" ref "}}}", "")
#define CHOICES(items) ENV("{\"choice_message\":{\"choices\":[" items "]}}", "")
#define TC(t)          "{\"text_message\":{\"text\":\"" t "\"}}"

struct row {
    const char *name;
    const char *body;
    int status;
    const char *field; /* expected field path when status is not 200 */
};

static const struct row rows[] = {
    /* ---- accepted ---- */
    {"text", ENV(TEXT, ""), 200, ""},
    {"every option",
     ENV(TEXT, ",\"channel_priority_order\":[\"WHATSAPP\",\"SMS\"],"
               "\"channel_properties\":{\"SMS_SENDER\":\"Coldchain\"},"
               "\"message_metadata\":\"cmd:42\",\"conversation_metadata\":{\"a\":{\"b\":1}},"
               "\"conversation_metadata_update_strategy\":\"MERGE_PATCH\","
               "\"correlation_id\":\"c-42\",\"callback_url\":\"https://cb.example.com/x\","
               "\"queue\":\"HIGH_PRIORITY\",\"processing_strategy\":\"DISPATCH_ONLY\","
               "\"ttl\":\"86400s\",\"message_content_type\":\"CONTENT_NOTIFICATION\""),
     200, ""},
    {"contact_id recipient",
     "{\"app_id\":\"sim-app\",\"recipient\":{\"contact_id\":\"01J0NPZX45HY43KWJRP1XPA7Z3\"},"
     "\"message\":" TEXT "}",
     200, ""},
    {"two identities with app_id",
     "{\"app_id\":\"sim-app\",\"recipient\":{\"identified_by\":{\"channel_identities\":["
     "{\"channel\":\"WHATSAPP\",\"identity\":\"4670\"},"
     "{\"channel\":\"MESSENGER\",\"identity\":\"99\",\"app_id\":\"fb\"}]}},\"message\":" TEXT "}",
     200, ""},
    {"null optional field", ENV(TEXT, ",\"message_metadata\":null"), 200, ""},
    {"media",
     ENV("{\"media_message\":{\"url\":\"https://f.example.com/"
         "a.jpg\",\"filename_override\":\"a.jpg\"}}",
         ""),
     200, ""},
    {"whatsapp template",
     WA_TEMPLATE("{\"template_id\":\"freezer_alarm\",\"language_code\":\"en_US\","
                 "\"parameters\":{\"body[1]text\":\"Freezer 3\"}}"),
     200, ""},
    {"omni template, BCP-47 language",
     ENV("{\"template_message\":{\"omni_template\":{\"template_id\":\"01J0S3\",\"version\":"
         "\"latest\","
         "\"language_code\":\"en-US\",\"parameters\":{\"device\":\"F3\"}}}}",
         ""),
     200, ""},
    {"choices",
     CHOICES("{"
             "\"text_message\":{\"text\":\"Ack\"},\"postback_data\":\"ack:42\"},"
             "{\"url_message\":{\"title\":\"Dash\",\"url\":\"https://d.example.com\"}},"
             "{\"call_message\":{\"title\":\"Call\",\"phone_number\":\"+46701112233\"}},"
             "{\"location_message\":{\"coordinates\":{\"latitude\":59.3,\"longitude\":18},"
             "\"title\":\"W2\"}}"),
     200, ""},
    {"card",
     ENV("{\"card_message\":{\"title\":\"F3\",\"media_message\":{\"url\":\"https://x.example/"
         "a.jpg\"},"
         "\"choices\":[" TC("Ack") "]}}",
         ""),
     200, ""},
    {"carousel",
     ENV("{\"carousel_message\":{\"cards\":[{\"title\":\"F1\"},{\"title\":\"F3\"}]}}", ""), 200,
     ""},
    {"location",
     ENV("{\"location_message\":{\"coordinates\":{\"latitude\":-90,\"longitude\":180.0},"
         "\"title\":\"Pole\",\"label\":\"B\"}}",
         ""),
     200, ""},
    {"list",
     ENV("{\"list_message\":{\"title\":\"Snooze?\",\"sections\":[{\"title\":\"D\",\"items\":["
         "{\"choice\":{\"title\":\"10 minutes\",\"postback_data\":\"s10\"}}]}]}}",
         ""),
     200, ""},
    {"contact info",
     ENV("{\"contact_info_message\":{\"name\":{\"full_name\":\"Night shift\"},"
         "\"phone_numbers\":[{\"phone_number\":\"+46701112233\",\"type\":\"WORK\"}]}}",
         ""),
     200, ""},
    {"explicit channel message and agent",
     ENV("{\"text_message\":{\"text\":\"x\"},\"explicit_channel_message\":{\"WHATSAPP\":\"{}\"},"
         "\"agent\":{\"display_name\":\"Bot\",\"type\":\"BOT\"}}",
         ""),
     200, ""},
    {"ttl lowest", ENV(TEXT, ",\"ttl\":\"3s\""), 200, ""},
    {"ttl highest", ENV(TEXT, ",\"ttl\":\"315576000000s\""), 200, ""},

    /* ---- the envelope ---- */
    {"not JSON", "{\"app_id\":", 400, ""},
    {"empty body", "", 400, ""},
    {"array body", "[]", 400, ""},
    {"duplicate key", ENV(TEXT, ",\"app_id\":\"sim-app\""), 400, ""},
    {"unknown top-level field", ENV(TEXT, ",\"priority\":1"), 400, "priority"},
    {"missing app_id", "{" RECIPIENT ",\"message\":" TEXT "}", 400, "app_id"},
    {"empty app_id", "{\"app_id\":\"\"," RECIPIENT ",\"message\":" TEXT "}", 400, "app_id"},
    {"app_id not a string", "{\"app_id\":7," RECIPIENT ",\"message\":" TEXT "}", 400, "app_id"},
    {"another app", "{\"app_id\":\"other\"," RECIPIENT ",\"message\":" TEXT "}", 404, "app_id"},
    {"missing message", "{\"app_id\":\"sim-app\"," RECIPIENT "}", 400, "message"},
    {"channel not in app", ENV(TEXT, ",\"channel_priority_order\":[\"SMS\",\"RCS\"]"), 400,
     "channel_priority_order[1]"},
    {"channel order not an array", ENV(TEXT, ",\"channel_priority_order\":\"WHATSAPP\""), 400,
     "channel_priority_order"},
    {"unknown channel in order", ENV(TEXT, ",\"channel_priority_order\":[\"PIGEON\"]"), 400,
     "channel_priority_order[0]"},
    {"ttl as a number", ENV(TEXT, ",\"ttl\":3600"), 400, "ttl"},
    {"ttl without unit", ENV(TEXT, ",\"ttl\":\"3600\""), 400, "ttl"},
    {"ttl too short", ENV(TEXT, ",\"ttl\":\"2s\""), 400, "ttl"},
    {"ttl too long", ENV(TEXT, ",\"ttl\":\"315576000001s\""), 400, "ttl"},
    {"ttl fraction", ENV(TEXT, ",\"ttl\":\"1.5s\""), 400, "ttl"},
    {"ttl huge", ENV(TEXT, ",\"ttl\":\"99999999999999999999999999s\""), 400, "ttl"},
    {"correlation_id not a string", ENV(TEXT, ",\"correlation_id\":42"), 400, "correlation_id"},
    {"conversation_metadata a string", ENV(TEXT, ",\"conversation_metadata\":\"{}\""), 400,
     "conversation_metadata"},
    {"channel property not a string",
     ENV(TEXT, ",\"channel_properties\":{\"WHATSAPP_PREVIEW_URL\":true}"), 400,
     "channel_properties.WHATSAPP_PREVIEW_URL"},
    {"unknown queue", ENV(TEXT, ",\"queue\":\"FAST\""), 400, "queue"},
    {"callback_url not http", ENV(TEXT, ",\"callback_url\":\"ftp://x\""), 400, "callback_url"},

    /* ---- the recipient ---- */
    {"missing recipient", "{\"app_id\":\"sim-app\",\"message\":" TEXT "}", 400, "recipient"},
    {"both recipients",
     "{\"app_id\":\"sim-app\",\"recipient\":{\"contact_id\":\"c\",\"identified_by\":"
     "{\"channel_identities\":[{\"channel\":\"SMS\",\"identity\":\"1\"}]}},\"message\":" TEXT "}",
     400, "recipient"},
    {"no recipient kind", "{\"app_id\":\"sim-app\",\"recipient\":{},\"message\":" TEXT "}", 400,
     "recipient"},
    {"no identities",
     "{\"app_id\":\"sim-app\",\"recipient\":{\"identified_by\":{\"channel_identities\":[]}},"
     "\"message\":" TEXT "}",
     400, "recipient.identified_by.channel_identities"},
    {"identity missing",
     "{\"app_id\":\"sim-app\",\"recipient\":{\"identified_by\":{\"channel_identities\":["
     "{\"channel\":\"SMS\",\"identity\":\"1\"},{\"channel\":\"SMS\"}]}},\"message\":" TEXT "}",
     400, "recipient.identified_by.channel_identities[1].identity"},
    {"unknown channel",
     "{\"app_id\":\"sim-app\",\"recipient\":{\"identified_by\":{\"channel_identities\":["
     "{\"channel\":\"WHATSUP\",\"identity\":\"1\"}]}},\"message\":" TEXT "}",
     400, "recipient.identified_by.channel_identities[0].channel"},
    {"unknown key in identity",
     "{\"app_id\":\"sim-app\",\"recipient\":{\"identified_by\":{\"channel_identities\":["
     "{\"channel\":\"SMS\",\"identity\":\"1\",\"name\":\"x\"}]}},\"message\":" TEXT "}",
     400, "recipient.identified_by.channel_identities[0].name"},

    /* ---- the message ---- */
    {"two contents",
     ENV("{\"text_message\":{\"text\":\"a\"},\"media_message\":{\"url\":\"https://a.example\"}}",
         ""),
     400, "message"},
    {"no content", ENV("{\"agent\":{}}", ""), 400, "message"},
    {"unknown key in message", ENV("{\"text_message\":{\"text\":\"a\"},\"caption\":\"c\"}", ""),
     400, "message.caption"},
    {"text missing", ENV("{\"text_message\":{}}", ""), 400, "message.text_message.text"},
    {"text not a string", ENV("{\"text_message\":{\"text\":1}}", ""), 400,
     "message.text_message.text"},
    {"text_message not an object", ENV("{\"text_message\":\"hi\"}", ""), 400,
     "message.text_message"},
    {"media without url", ENV("{\"media_message\":{\"filename_override\":\"a\"}}", ""), 400,
     "message.media_message.url"},
    {"media url not http", ENV("{\"media_message\":{\"url\":\"file:///etc/passwd\"}}", ""), 400,
     "message.media_message.url"},
    {"location without latitude",
     ENV("{\"location_message\":{\"coordinates\":{\"longitude\":1},\"title\":\"t\"}}", ""), 400,
     "message.location_message.coordinates.latitude"},
    {"latitude as a string",
     ENV("{\"location_message\":{\"coordinates\":{\"latitude\":\"1\",\"longitude\":1},"
         "\"title\":\"t\"}}",
         ""),
     400, "message.location_message.coordinates.latitude"},
    {"latitude out of range",
     ENV("{\"location_message\":{\"coordinates\":{\"latitude\":91,\"longitude\":1},"
         "\"title\":\"t\"}}",
         ""),
     400, "message.location_message.coordinates.latitude"},
    {"location without title",
     ENV("{\"location_message\":{\"coordinates\":{\"latitude\":1,\"longitude\":1}}}", ""), 400,
     "message.location_message.title"},
    {"no choices", CHOICES(""), 400, "message.choice_message.choices"},
    {"eleven choices",
     CHOICES(TC("1") "," TC("2") "," TC("3") "," TC("4") "," TC("5") "," TC("6") "," TC("7") "," TC(
         "8") "," TC("9") "," TC("10") "," TC("11")),
     400, "message.choice_message.choices"},
    {"choice of two kinds",
     CHOICES(TC("a") ",{\"text_message\":{\"text\":\"b\"},\"url_message\":{\"title\":\"t\","
                     "\"url\":\"https://u.example\"}}"),
     400, "message.choice_message.choices[1]"},
    {"choice postback not a string",
     CHOICES("{\"text_message\":{\"text\":\"a\"},\"postback_data\":1}"), 400,
     "message.choice_message.choices[0].postback_data"},
    {"url choice without url", CHOICES("{\"url_message\":{\"title\":\"t\"}}"), 400,
     "message.choice_message.choices[0].url_message.url"},
    {"template with neither part", ENV("{\"template_message\":{}}", ""), 400,
     "message.template_message"},
    {"omni template without version",
     ENV("{\"template_message\":{\"omni_template\":{\"template_id\":\"t\"}}}", ""), 400,
     "message.template_message.omni_template.version"},
    {"whatsapp template in BCP-47",
     WA_TEMPLATE("{\"template_id\":\"t\",\"language_code\":\"en-US\"}"), 400,
     "message.template_message.channel_template.WHATSAPP.language_code"},
    {"whatsapp template without language", WA_TEMPLATE("{\"template_id\":\"t\"}"), 400,
     "message.template_message.channel_template.WHATSAPP.language_code"},
    {"template without id", WA_TEMPLATE("{\"language_code\":\"en\"}"), 400,
     "message.template_message.channel_template.WHATSAPP.template_id"},
    {"template parameter not a string",
     WA_TEMPLATE("{\"template_id\":\"t\",\"language_code\":\"en\",\"parameters\":{\"a\":1}}"), 400,
     "message.template_message.channel_template.WHATSAPP.parameters.a"},
    {"channel template for no channel",
     ENV("{\"template_message\":{\"channel_template\":{\"FAX\":{\"template_id\":\"t\"}}}}", ""),
     400, "message.template_message.channel_template.FAX"},
    {"carousel without cards", ENV("{\"carousel_message\":{\"cards\":[]}}", ""), 400,
     "message.carousel_message.cards"},
    {"list without sections", ENV("{\"list_message\":{\"title\":\"t\"}}", ""), 400,
     "message.list_message.sections"},
    {"contact without full name",
     ENV("{\"contact_info_message\":{\"name\":{},\"phone_numbers\":[{\"phone_number\":\"1\"}]}}",
         ""),
     400, "message.contact_info_message.name.full_name"},
    {"explicit message not a string",
     ENV("{\"text_message\":{\"text\":\"x\"},\"explicit_channel_message\":{\"WHATSAPP\":{}}}", ""),
     400, "message.explicit_channel_message.WHATSAPP"},
};

/* Returns a body whose `key` holds a string of `n` copies of `unit`, or NULL. */
static char *long_field_body(const char *key, const char *unit, size_t n)
{
    size_t unit_len = strlen(unit), len = n * unit_len;
    size_t cap = len + strlen(key) + 512;
    char *value = malloc(len + 1), *body = malloc(cap);
    if (!value || !body) {
        free(value);
        free(body);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(value + i * unit_len, unit, unit_len);
    }
    value[len] = '\0';
    snprintf(body, cap, ENV(TEXT, ",\"%s\":\"%s\""), key, value);
    free(value);
    return body;
}

static void check_length_limit(const struct sim_app *app, const char *key, size_t max)
{
    /* Limits count characters, not bytes: "é" is two bytes and one character. */
    static const char *const units[] = {"a", "\xc3\xa9"};
    struct sim_verdict v;
    for (size_t u = 0; u < 2; u++) {
        char *at_max = long_field_body(key, units[u], max);
        char *over = long_field_body(key, units[u], max + 1);
        CHECK(at_max && over);
        if (at_max && over) {
            CHECKF(sim_validate_send_text(at_max, strlen(at_max), app, &v) == 200,
                   "%s at %zu characters: %d %s", key, max, v.status, v.description);
            CHECKF(sim_validate_send_text(over, strlen(over), app, &v) == 400,
                   "%s over %zu characters: %d", key, max, v.status);
            CHECK_STR(v.field, key);
        }
        free(at_max);
        free(over);
    }
}

int main(void)
{
    static const char *const channels[] = {"WHATSAPP", "SMS"};
    const struct sim_app app = {"sim-app", channels, 2};
    struct sim_verdict v;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        int status = sim_validate_send_text(r->body, strlen(r->body), &app, &v);
        CHECKF(status == r->status, "%s: status %d, want %d (%s: %s)", r->name, status, r->status,
               v.field, v.description);
        CHECKF(v.status == status, "%s: verdict and return disagree", r->name);
        if (r->status != 200) {
            CHECKF(strcmp(v.field, r->field) == 0, "%s: field \"%s\", want \"%s\"", r->name,
                   v.field, r->field);
            CHECKF(v.description[0] != '\0', "%s: no description", r->name);
        }
    }

    check_length_limit(&app, "message_metadata", 1024);
    check_length_limit(&app, "correlation_id", 128);

    /* A field path cut at SIM_FIELD_MAX must stay valid UTF-8 (it goes into a JSON answer). */
    char *odd = long_field_body("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                "x",
                                "v", 1);
    CHECK(odd != NULL);
    if (odd) {
        CHECK(sim_validate_send_text(odd, strlen(odd), &app, &v) == 400);
        json_t *field = json_string(v.field);
        CHECKF(field != NULL, "field path is not valid UTF-8: %s", v.field);
        json_decref(field);
        free(odd);
    }

    /* A conversation_metadata object over 2048 characters once serialised. */
    char meta[2100], body[2400];
    memset(meta, 'm', sizeof(meta) - 1);
    meta[sizeof(meta) - 1] = '\0';
    snprintf(body, sizeof(body), ENV(TEXT, ",\"conversation_metadata\":{\"k\":\"%s\"}"), meta);
    CHECK(sim_validate_send_text(body, strlen(body), &app, &v) == 400);
    CHECK_STR(v.field, "conversation_metadata");

    CHECK(sim_validate_channel_known("WHATSAPP"));
    CHECK(!sim_validate_channel_known("CHANNEL_UNSPECIFIED"));
    return check_report();
}
