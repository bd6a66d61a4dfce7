/* The simulator's callback side against tables: the webhook signature (facts 8.5's vectors), the
 * loopback rule for targets, the trigger table, delivery-report plans and bodies, inject bodies
 * and the webhook registry's checks. These modules are pure (or, the registry, self-contained),
 * so they are compiled straight into this test rather than linked from the sinch-sim executable. */
#include "check.h"

/* NOLINTBEGIN(bugprone-suspicious-include): on purpose */
#include "../sim/sim_callbacks.c"
#include "../sim/sim_ids.c"
#include "../sim/sim_reports.c"
#include "../sim/sim_sign.c"
#include "../sim/sim_trigger.c"
#include "../sim/sim_validate.c"
#include "../sim/sim_webhooks.c"
/* NOLINTEND(bugprone-suspicious-include) */

/* ---- signatures (fact 8.5) ---- */

#define VECTOR_A_BODY                                                                              \
    "{\"app_id\":\"01EB37HMH1M6SV18BSNS3G135H\",\"accepted_time\":\"2020-11-17T15:09:11.659Z\","   \
    "\"project_id\":\"c36f3d3d-1513-2edd-ae42-11995557ff61\",\"message_delivery_report\":{"        \
    "\"message_id\":\"01EQBC1A3BEK731GY4YXEN0C2R\",\"conversation_id\":"                           \
    "\"01EPYATA64TMNZ1FV02JKF12JF\",\"status\":\"QUEUED_ON_CHANNEL\",\"contact_id\":"              \
    "\"01EXA07N79THJ20WSN6AS30TMW\"}}"
#define VECTOR_B_BODY                                                                              \
    "{\"app_id\":\"01J0M9S346Q3D25VT4F5V37E3S\",\"accepted_time\":\"2024-06-15T14:23:45.123Z\","   \
    "\"event_time\":\"2024-06-15T14:23:44Z\",\"project_id\":\"3f2a9c1e-7b4d-4e8a-9c2f-"            \
    "5d6e7f8a9b0c\",\"message\":{\"id\":\"01J0QKFBF5KZNWJ47TAN9ZT24M\",\"direction\":\"TO_APP\","  \
    "\"contact_message\":{\"text_message\":{\"text\":\"Snooze 10 min\"}},\"channel_identity\":{"   \
    "\"channel\":\"WHATSAPP\",\"identity\":\"46701234567\",\"app_id\":\"\"},\"conversation_id\":"  \
    "\"\",\"contact_id\":\"\",\"metadata\":\"\",\"accept_time\":\"2024-06-15T14:23:45.101Z\","     \
    "\"processing_mode\":\"DISPATCH\"},\"message_metadata\":\"\",\"correlation_id\":\"\"}"

struct sig_row {
    const char *name, *secret, *body, *nonce, *ts, *want;
    size_t len; /* 0: strlen(body) */
};

static const struct sig_row sig_rows[] = {
    {"A", "foo_secret1234", VECTOR_A_BODY, "01FJA8B4A7BM43YGWSG9GBV067", "1634579353",
     "Yc+3R1pIS78xLASybulhs8BsSo9BPB3Pr92QCUoczfk=", 0},
    {"B", "my-webhook-secret", VECTOR_B_BODY, "01J09EE0ZBGJ09TQM83XSSSS6Y", "1718461425",
     "VU1ImrOlQenR52g41VpIkcxgZUZmMvLLYyx1cKHq+Yo=", 0},
    {"B + newline", "my-webhook-secret", VECTOR_B_BODY "\n", "01J09EE0ZBGJ09TQM83XSSSS6Y",
     "1718461425", "Dm71+NiwMxY/NNmR3u/AOQWEacuozLayJYH0pPgiNuQ=", 0},
    {"C", "bridge-secret", "{\"ping\":true}", "abc123", "1700000000",
     "lF8LRkFBsoCUZ2jgEJJLaZBcXvYE72vb98l+8pNZeMo=", 0},
    {"C empty body", "bridge-secret", "", "abc123", "1700000000",
     "pJkdlyqC6PjSRTBlfKi7KlnE7q4ynZ+sBkFsj/zJjps=", 0},
    {"D non-ASCII", "bridge-secret", "{\"text\":\"Hej p\xc3\xa5 dig \xf0\x9f\x91\x8b\"}", "abc124",
     "1700000001", "1FWDc2eHAfJE6KZTUJ+1OCCq6O0RKIA9K5DgYKjmskg=", 0},
};

static void test_signatures(void)
{
    char out[SIM_SIGNATURE_LEN + 1];
    for (size_t i = 0; i < sizeof(sig_rows) / sizeof(sig_rows[0]); i++) {
        const struct sig_row *r = &sig_rows[i];
        size_t len = r->len ? r->len : strlen(r->body);
        CHECKF(sim_sign(r->secret, r->body, len, r->nonce, r->ts, out), "%s", r->name);
        CHECKF(strcmp(out, r->want) == 0, "vector %s: %s", r->name, out);
    }
    CHECK(strlen(VECTOR_A_BODY) == 322 && strlen(VECTOR_B_BODY) == 539);
    /* Bad rows: a different secret, nonce or timestamp must change the signature. */
    sim_sign("bridge-secreT", "{\"ping\":true}", 13, "abc123", "1700000000", out);
    CHECK(strcmp(out, "lF8LRkFBsoCUZ2jgEJJLaZBcXvYE72vb98l+8pNZeMo=") != 0);
    sim_sign("bridge-secret", "{\"ping\":true}", 13, "abc124", "1700000000", out);
    CHECK(strcmp(out, "lF8LRkFBsoCUZ2jgEJJLaZBcXvYE72vb98l+8pNZeMo=") != 0);
    sim_sign("bridge-secret", "{\"ping\":true}", 13, "abc123", "1700000001", out);
    CHECK(strcmp(out, "lF8LRkFBsoCUZ2jgEJJLaZBcXvYE72vb98l+8pNZeMo=") != 0);
    CHECK(sim_sign("", "x", 1, "n", "1", out) && strlen(out) == SIM_SIGNATURE_LEN);
}

/* ---- loopback targets ---- */

static const struct {
    const char *url;
    bool ok;
} url_rows[] = {
    {"http://127.0.0.1:8080/webhooks/sinch", true},
    {"https://127.0.0.1/x", true},
    {"http://127.1.2.3", true},
    {"HTTP://LOCALHOST:9/x?y#z", true},
    {"http://[::1]:8080/x", true},
    {"http://[::ffff:127.0.0.1]/x", true},
    {"http://user:pw@127.0.0.1:1/x", true},
    {"http://127.0.0.1:80a/x", false},
    {"http://127.0.0.1.nip.io/x", false},
    {"http://10.0.0.1/x", false},
    {"http://[::2]/x", false},
    {"http://[::1/x", false},
    {"http://localhost.example.com/x", false},
    {"http://example.com@evil.com/x", false},
    {"http://127.0.0.1@evil.com/x", false},
    {"ftp://127.0.0.1/x", false},
    {"127.0.0.1:8080", false},
    {"http:///x", false},
    {"http://", false},
    {"", false},
};

static void test_loopback(void)
{
    for (size_t i = 0; i < sizeof(url_rows) / sizeof(url_rows[0]); i++) {
        CHECKF(sim_url_is_loopback(url_rows[i].url) == url_rows[i].ok, "%s", url_rows[i].url);
    }
}

/* ---- triggers ---- */

static void test_triggers(void)
{
    enum sim_trigger t;
    CHECK(sim_trigger_parse("MESSAGE_DELIVERY", &t) && t == SIM_TRIGGER_MESSAGE_DELIVERY);
    CHECK(!sim_trigger_parse("UNSPECIFIED_TRIGGER", &t));
    CHECK(!sim_trigger_parse("SMART_CONVERSATIONS", &t)); /* Node's misspelling (fact 6.3) */
    CHECK(!sim_trigger_parse("message_delivery", &t));
    CHECK(sim_trigger_from_key("duplicated_contact_identities_notification", &t) &&
          t == SIM_TRIGGER_CONTACT_IDENTITIES_DUPLICATION);
    CHECK(!sim_trigger_from_key("message_delivery", &t)); /* an exact match, not a prefix */
    for (int i = 0; i < SIM_TRIGGER_COUNT; i++) {
        CHECK(sim_trigger_parse(sim_trigger_name((enum sim_trigger)i), &t) && (int)t == i);
        CHECK(sim_trigger_from_key(sim_trigger_key((enum sim_trigger)i), &t) && (int)t == i);
    }
    CHECK_STR(sim_trigger_name(SIM_TRIGGER_UNKNOWN), "UNKNOWN");
}

/* ---- JSON helpers ---- */

/* The value at a dotted path ("message.contact_message.text_message.text"); a number in the
 * path indexes an array. Borrowed. */
static json_t *at(json_t *v, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *k = strtok_r(buf, ".", &save); v && k; k = strtok_r(NULL, ".", &save)) {
        char *end;
        long idx = strtol(k, &end, 10);
        v = json_is_array(v) && !*end ? json_array_get(v, (size_t)idx) : json_object_get(v, k);
    }
    return v;
}

static const char *at_str(json_t *v, const char *path)
{
    const char *s = json_string_value(at(v, path));
    return s ? s : "(absent)";
}

/* ---- delivery reports ---- */

#define ID2                                                                                        \
    "\"recipient\":{\"identified_by\":{\"channel_identities\":[{\"channel\":\"WHATSAPP\","         \
    "\"identity\":\"4670\"},{\"channel\":\"SMS\",\"identity\":\"4671\"}]}}"

struct report_row {
    const char *name;
    const char *send;
    enum sim_report_mode mode;
    const char *switch_to;
    const char *reason;
    const char *want; /* "STATUS/CHANNEL/IDENTITY[/R]" per step, space-separated */
};

static const struct report_row report_rows[] = {
    {"normal", "{\"app_id\":\"a\"," ID2 ",\"message\":{}}", SIM_REPORTS_NORMAL, "", NULL,
     "QUEUED_ON_CHANNEL/WHATSAPP/4670 DELIVERED/WHATSAPP/4670 READ/WHATSAPP/4670"},
    {"priority order picks the channel and its identity",
     "{\"app_id\":\"a\"," ID2 ",\"channel_priority_order\":[\"SMS\",\"WHATSAPP\"],\"message\":{}}",
     SIM_REPORTS_NORMAL, "", NULL, "QUEUED_ON_CHANNEL/SMS/4671 DELIVERED/SMS/4671 READ/SMS/4671"},
    {"contact_id", "{\"app_id\":\"a\",\"recipient\":{\"contact_id\":\"C1\"},\"message\":{}}",
     SIM_REPORTS_NORMAL, "", NULL,
     "QUEUED_ON_CHANNEL/MESSENGER/ DELIVERED/MESSENGER/ READ/MESSENGER/"},
    {"failed", "{\"app_id\":\"a\"," ID2 ",\"message\":{}}", SIM_REPORTS_FAILED, "", NULL,
     "QUEUED_ON_CHANNEL/WHATSAPP/4670 FAILED/WHATSAPP/4670/R"},
    {"failed, switch", "{\"app_id\":\"a\"," ID2 ",\"message\":{}}", SIM_REPORTS_FAILED, "SMS",
     "{\"code\":\"X\"}",
     "QUEUED_ON_CHANNEL/WHATSAPP/4670 SWITCHING_CHANNEL/WHATSAPP/4670/R QUEUED_ON_CHANNEL/SMS/4671 "
     "DELIVERED/SMS/4671"},
    {"failed, switch to a channel the send did not name",
     "{\"app_id\":\"a\"," ID2 ",\"message\":{}}", SIM_REPORTS_FAILED, "RCS", NULL,
     "QUEUED_ON_CHANNEL/WHATSAPP/4670 FAILED/WHATSAPP/4670/R"},
    {"failed, switch to the first channel itself", "{\"app_id\":\"a\"," ID2 ",\"message\":{}}",
     SIM_REPORTS_FAILED, "WHATSAPP", NULL,
     "QUEUED_ON_CHANNEL/WHATSAPP/4670 FAILED/WHATSAPP/4670/R"},
};

static void test_reports(void)
{
    struct sim_ids ids;
    sim_ids_init(&ids);
    struct sim_cb_context ctx = {"sim-app", "sim-project", 1718461425123, &ids};
    for (size_t i = 0; i < sizeof(report_rows) / sizeof(report_rows[0]); i++) {
        const struct report_row *r = &report_rows[i];
        struct sim_delivery_mode mode = {.mode = r->mode,
                                         .reason = r->reason ? strdup(r->reason) : NULL};
        snprintf(mode.switch_to, sizeof(mode.switch_to), "%s", r->switch_to);
        json_t *send = json_loads(r->send, 0, NULL);
        struct sim_report_plan *p =
            sim_report_plan_new(send, "01J03E28JT97KB6CQ643DZVMXX", &mode, "MESSENGER");
        char got[512] = "";
        size_t pos = 0;
        struct sim_report_step st;
        for (unsigned s = 0; p && sim_report_step(p, s, &st); s++) {
            pos += (size_t)snprintf(got + pos, sizeof(got) - pos, "%s%s/%s/%s%s", s ? " " : "",
                                    st.status, st.channel, st.identity, st.with_reason ? "/R" : "");
            json_t *body = sim_report_body(p, s, &ctx);
            CHECKF(body != NULL, "%s: body %u", r->name, s);
            CHECK_STR(at_str(body, "message_delivery_report.status"), st.status);
            CHECKF((at(body, "message_delivery_report.reason") != NULL) == st.with_reason,
                   "%s: reason on step %u", r->name, s);
            if (st.with_reason && r->reason) {
                CHECK_STR(at_str(body, "message_delivery_report.reason.code"), "X");
            }
            json_decref(body);
        }
        CHECKF(strcmp(got, r->want) == 0, "%s:\n  got  %s\n  want %s", r->name, got, r->want);
        CHECK(p == NULL || sim_report_body(p, 99, &ctx) == NULL);
        free(p);
        free(mode.reason);
        json_decref(send);
    }

    /* The body of facts 7.4 for a send with metadata and a correlation id. */
    struct sim_delivery_mode normal = {.mode = SIM_REPORTS_NORMAL};
    json_t *send = json_loads("{\"app_id\":\"a\"," ID2 ",\"message\":{},\"message_metadata\":"
                              "\"cmd:freezer-alarm-42\",\"correlation_id\":\"freezer-alarm-42\"}",
                              0, NULL);
    struct sim_report_plan *p =
        sim_report_plan_new(send, "01J03E28JT97KB6CQ643DZVMXX", &normal, "WHATSAPP");
    json_t *body = p ? sim_report_body(p, 1, &ctx) : NULL;
    char *text = body ? json_dumps(body, SIM_CB_DUMP_FLAGS) : NULL;
    CHECK_STR(text,
              "{\"app_id\":\"sim-app\",\"accepted_time\":\"2024-06-15T14:23:45.123Z\","
              "\"event_time\":\"2024-06-15T14:23:44Z\",\"project_id\":\"sim-project\","
              "\"message_delivery_report\":{\"message_id\":\"01J03E28JT97KB6CQ643DZVMXX\","
              "\"conversation_id\":\"\",\"status\":\"DELIVERED\",\"channel_identity\":{"
              "\"channel\":\"WHATSAPP\",\"identity\":\"4670\",\"app_id\":\"\"},\"contact_id\":\"\","
              "\"metadata\":\"cmd:freezer-alarm-42\",\"processing_mode\":\"DISPATCH\"},"
              "\"message_metadata\":\"\",\"correlation_id\":\"freezer-alarm-42\"}");
    free(text);
    json_decref(body);
    free(p);
    json_decref(send);
}

/* ---- inject bodies ---- */

struct inject_row {
    const char *name;
    const char *req;
    bool ok;
    const char *trigger;
    const char *path; /* a path to check in the body ... */
    const char *want; /* ... and its string value (or a bit of the error) */
};

static const struct inject_row inject_rows[] = {
    {"default text", "{}", true, "MESSAGE_INBOUND", "message.contact_message.text_message.text",
     "Hello"},
    {"text from", "{\"text\":\"Snooze\",\"from\":\"46701234567\"}", true, "MESSAGE_INBOUND",
     "message.channel_identity.identity", "46701234567"},
    {"reply_to", "{\"text\":\"On my way\",\"reply_to\":\"M1\"}", true, "MESSAGE_INBOUND",
     "message.contact_message.reply_to.message_id", "M1"},
    {"metadata", "{\"metadata\":\"cmd:42\"}", true, "MESSAGE_INBOUND", "message.metadata",
     "cmd:42"},
    {"correlation id", "{\"correlation_id\":\"c-1\"}", true, "MESSAGE_INBOUND", "correlation_id",
     "c-1"},
    {"media", "{\"type\":\"media\",\"url\":\"https://m/x.jpg\"}", true, "MESSAGE_INBOUND",
     "message.contact_message.media_message.url", "https://m/x.jpg"},
    {"media card", "{\"type\":\"media\",\"url\":\"https://m/x.jpg\",\"caption\":\"c\"}", true,
     "MESSAGE_INBOUND", "message.contact_message.media_card_message.caption", "c"},
    {"choice", "{\"type\":\"choice\",\"message_id\":\"M\",\"postback_data\":\"snooze:42\"}", true,
     "MESSAGE_INBOUND", "message.contact_message.choice_response_message.postback_data",
     "snooze:42"},
    {"location", "{\"type\":\"location\",\"lat\":59.3293,\"lon\":18,\"title\":\"W2\"}", true,
     "MESSAGE_INBOUND", "message.contact_message.location_message.title", "W2"},
    {"other channel", "{\"channel\":\"SMS\"}", true, "MESSAGE_INBOUND",
     "message.channel_identity.channel", "SMS"},
    {"composing", "{\"type\":\"event\",\"trigger\":\"EVENT_INBOUND\"}", true, "EVENT_INBOUND",
     "event.direction", "TO_APP"},
    {"opt out", "{\"type\":\"event\",\"trigger\":\"OPT_OUT\",\"channel\":\"VIBERBM\"}", true,
     "OPT_OUT", "opt_out_notification.status", "OPT_OUT_SUCCEEDED"},
    {"channel event", "{\"type\":\"event\",\"trigger\":\"CHANNEL_EVENT\"}", true, "CHANNEL_EVENT",
     "channel_event_notification.channel_event.additional_data.quality_rating", "YELLOW"},
    {"delivery report",
     "{\"type\":\"event\",\"trigger\":\"MESSAGE_DELIVERY\",\"message_id\":"
     "\"M\",\"status\":\"READ\"}",
     true, "MESSAGE_DELIVERY", "message_delivery_report.status", "READ"},
    {"duplicates", "{\"type\":\"event\",\"trigger\":\"CONTACT_IDENTITIES_DUPLICATION\"}", true,
     "CONTACT_IDENTITIES_DUPLICATION",
     "duplicated_contact_identities_notification.duplicated_identities.0.channel", "WHATSAPP"},
    {"unsupported payload is a string", "{\"type\":\"event\",\"trigger\":\"UNSUPPORTED\"}", true,
     "UNSUPPORTED", "unsupported_callback.channel_identity.channel", "WHATSAPP"},
    {"raw object, key detected", "{\"type\":\"raw\",\"body\":{\"opt_in_notification\":{}}}", true,
     "OPT_IN", NULL, NULL},
    {"raw unknown", "{\"type\":\"raw\",\"body\":{\"what\":1}}", true, "UNKNOWN", NULL, NULL},
    {"raw string", "{\"type\":\"raw\",\"body\":\"not json\"}", true, "UNKNOWN", NULL, NULL},
    {"raw with trigger", "{\"type\":\"raw\",\"body\":{},\"trigger\":\"CAPABILITY\"}", true,
     "CAPABILITY", NULL, NULL},
    {"knobs are allowed", "{\"duplicates\":2,\"signature\":\"bad\"}", true, "MESSAGE_INBOUND", NULL,
     NULL},
    /* bad rows */
    {"unknown type", "{\"type\":\"sticker\"}", false, NULL, NULL, "type"},
    {"unknown key", "{\"txt\":\"x\"}", false, NULL, NULL, "txt"},
    {"key of another type", "{\"type\":\"media\",\"url\":\"u\",\"text\":\"x\"}", false, NULL, NULL,
     "text"},
    {"media without url", "{\"type\":\"media\"}", false, NULL, NULL, "url"},
    {"choice without postback", "{\"type\":\"choice\",\"message_id\":\"M\"}", false, NULL, NULL,
     "postback_data"},
    {"location as strings", "{\"type\":\"location\",\"lat\":\"1\",\"lon\":\"2\"}", false, NULL,
     NULL, "lat"},
    {"text not a string", "{\"text\":5}", false, NULL, NULL, "string"},
    {"event without trigger", "{\"type\":\"event\"}", false, NULL, NULL, "trigger"},
    {"event UNSPECIFIED", "{\"type\":\"event\",\"trigger\":\"UNSPECIFIED_TRIGGER\"}", false, NULL,
     NULL, "trigger"},
    {"raw without body", "{\"type\":\"raw\"}", false, NULL, NULL, "body"},
    {"raw bad trigger", "{\"type\":\"raw\",\"body\":{},\"trigger\":\"NOPE\"}", false, NULL, NULL,
     "trigger"},
    {"unknown channel", "{\"channel\":\"FAX\"}", false, NULL, NULL, "channel"},
    {"empty from", "{\"from\":\"\"}", false, NULL, NULL, "from"},
    {"not an object", "[]", false, NULL, NULL, "object"},
};

static void test_inject(void)
{
    struct sim_ids ids;
    sim_ids_init(&ids);
    struct sim_cb_context ctx = {"sim-app", "sim-project", 1718461425123, &ids};
    for (size_t i = 0; i < sizeof(inject_rows) / sizeof(inject_rows[0]); i++) {
        const struct inject_row *r = &inject_rows[i];
        struct sim_injected out;
        char why[256] = "";
        json_t *req = json_loads(r->req, 0, NULL);
        bool ok = sim_callback_inject(req, &ctx, &out, why, sizeof(why));
        CHECKF(ok == r->ok, "%s: %s", r->name, why);
        if (ok && r->ok) {
            CHECK_STR(sim_trigger_name(out.trigger), r->trigger);
            CHECKF(out.text && out.json, "%s", r->name);
            if (r->path) {
                CHECKF(strcmp(at_str(out.json, r->path), r->want) == 0, "%s: %s = %s", r->name,
                       r->path, at_str(out.json, r->path));
            }
            /* The bytes sent parse to the JSON answered (raw strings excepted). */
            json_t *again = json_loads(out.text, JSON_DECODE_ANY, NULL);
            CHECKF(!again || json_equal(again, out.json), "%s: text and json differ", r->name);
            json_decref(again);
        } else if (!ok && !r->ok) {
            CHECKF(strstr(why, r->want) != NULL, "%s: \"%s\" lacks \"%s\"", r->name, why, r->want);
            CHECK(out.text == NULL && out.json == NULL);
        }
        sim_injected_release(&out);
        json_decref(req);
    }

    /* Every trigger has a canned body under its own payload key. */
    for (int t = 0; t < SIM_TRIGGER_COUNT; t++) {
        struct sim_injected out;
        char why[256];
        json_t *req = json_pack("{s:s, s:s}", "type", "event", "trigger",
                                sim_trigger_name((enum sim_trigger)t));
        CHECKF(sim_callback_inject(req, &ctx, &out, why, sizeof(why)), "%s: %s",
               sim_trigger_name((enum sim_trigger)t), why);
        CHECKF(json_is_object(json_object_get(out.json, sim_trigger_key((enum sim_trigger)t))),
               "%s", sim_trigger_name((enum sim_trigger)t));
        CHECK_STR(at_str(out.json, "app_id"), "sim-app");
        CHECK_STR(at_str(out.json, "accepted_time"), "2024-06-15T14:23:45.123Z");
        sim_injected_release(&out);
        json_decref(req);
    }

    /* The location of fact 7.3, numbers as typed. */
    struct sim_injected out;
    char why[256];
    json_t *req = json_loads("{\"type\":\"location\",\"lat\":59.3293,\"lon\":18.0686,\"title\":"
                             "\"Warehouse 2\",\"label\":\"Dock B\"}",
                             0, NULL);
    CHECK(sim_callback_inject(req, &ctx, &out, why, sizeof(why)));
    CHECK(out.text && strstr(out.text, "{\"location_message\":{\"title\":\"Warehouse 2\","
                                       "\"label\":\"Dock B\",\"coordinates\":{\"latitude\":59.3293,"
                                       "\"longitude\":18.0686}}}"));
    sim_injected_release(&out);
    json_decref(req);
}

/* ---- the registry ---- */

static json_t *create(struct sim_webhooks *w, const char *body, const char *id,
                      struct sim_webhook_error *err)
{
    json_t *req = json_loads(body, 0, NULL);
    json_t *wh = sim_webhooks_create(w, req, "sim-app", id, err);
    json_decref(req);
    return wh;
}

#define WH(target, triggers)                                                                       \
    "{\"app_id\":\"sim-app\",\"target\":\"" target "\",\"triggers\":[" triggers "]}"

static void test_registry(void)
{
    struct sim_webhook_error err;
    struct sim_target targets[SIM_WEBHOOKS_MAX + 1];
    struct sim_webhooks *w = sim_webhooks_new(NULL, NULL);
    json_t *wh;

    CHECK(w != NULL);
    CHECK(!sim_webhooks_subscribed(w, SIM_TRIGGER_MESSAGE_DELIVERY));
    wh = create(w, WH("http://127.0.0.1:1/a", "\"MESSAGE_DELIVERY\""), "W1", &err);
    CHECK(wh && strcmp(at_str(wh, "target_type"), "HTTP") == 0);
    json_decref(wh);
    CHECK(sim_webhooks_subscribed(w, SIM_TRIGGER_MESSAGE_DELIVERY));
    CHECK(!sim_webhooks_subscribed(w, SIM_TRIGGER_MESSAGE_INBOUND));

    static const struct {
        const char *body;
        int status;
        const char *field;
    } bad[] = {
        {WH("http://127.0.0.1:1/a", "\"OPT_IN\""), 400, "target"}, /* the same target again */
        {WH("http://127.0.0.1:1/b", ""), 400, "triggers"},
        {WH("http://127.0.0.1:1/b", "\"UNSPECIFIED_TRIGGER\""), 400, "triggers[0]"},
        {WH("http://127.0.0.1:1/b", "\"OPT_IN\",\"NOPE\""), 400, "triggers[1]"},
        {WH("https://conversation-api.eu.sinch.com/x", "\"OPT_IN\""), 400, "target"},
        {WH("mailto:x@127.0.0.1", "\"OPT_IN\""), 400, "target"},
        {"{\"target\":\"http://127.0.0.1/b\",\"triggers\":[\"OPT_IN\"]}", 400, "app_id"},
        {"{\"app_id\":\"other\",\"target\":\"http://127.0.0.1/b\",\"triggers\":[\"OPT_IN\"]}", 404,
         ""},
        {"{\"app_id\":\"sim-app\",\"triggers\":[\"OPT_IN\"]}", 400, "target"},
        {"{\"app_id\":\"sim-app\",\"target\":\"http://127.0.0.1/b\",\"triggers\":[\"OPT_IN\"],"
         "\"target_type\":\"GRPC\"}",
         400, "target_type"},
        {"{\"app_id\":\"sim-app\",\"target\":\"http://127.0.0.1/b\",\"triggers\":[\"OPT_IN\"],"
         "\"trigger\":[]}",
         400, "trigger"},
        {"[]", 400, ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wh = create(w, bad[i].body, "WX", &err);
        CHECKF(wh == NULL && err.status == bad[i].status && strcmp(err.field, bad[i].field) == 0,
               "bad[%zu]: %d %s", i, err.status, err.field);
        json_decref(wh);
    }

    /* Four more fit (one DISMISS), a sixth does not. */
    const char *more[] = {
        WH("http://127.0.0.1:1/b", "\"OPT_IN\""),
        WH("http://localhost:1/c", "\"MESSAGE_DELIVERY\""), WH("http://[::1]:1/d", "\"OPT_OUT\""),
        "{\"app_id\":\"sim-app\",\"target\":\"http://127.0.0.1:1/e\","
        "\"target_type\":\"DISMISS\",\"secret\":\"s\",\"triggers\":[\"CAPABILITY\"]}"};
    const char *ids[] = {"W2", "W3", "W4", "W5"};
    for (size_t i = 0; i < 4; i++) {
        wh = create(w, more[i], ids[i], &err);
        CHECKF(wh != NULL, "more[%zu]: %s", i, err.why);
        json_decref(wh);
    }
    wh = create(w, WH("http://127.0.0.1:1/f", "\"OPT_IN\""), "W6", &err);
    CHECK(wh == NULL && err.status == 400);
    CHECK(sim_webhooks_targets(w, SIM_TRIGGER_MESSAGE_DELIVERY, targets) == 2);
    for (size_t i = 0; i < 2; i++) {
        sim_target_release(&targets[i]);
    }
    CHECK(!sim_webhooks_subscribed(w, SIM_TRIGGER_CAPABILITY)); /* DISMISS gets nothing */
    CHECK(sim_webhooks_targets(w, SIM_TRIGGER_UNKNOWN, targets) == 0);

    /* Update: the mask limits what changes; a null clears; a taken target is refused. */
    json_t *patch =
        json_loads("{\"target\":\"http://127.0.0.1:1/z\",\"triggers\":[\"OPT_IN\"]}", 0, NULL);
    wh = sim_webhooks_update(w, "W1", patch, "triggers", "sim-app", &err);
    CHECK(wh && strcmp(at_str(wh, "target"), "http://127.0.0.1:1/a") == 0 &&
          strcmp(at_str(wh, "triggers.0"), "OPT_IN") == 0);
    json_decref(wh);
    CHECK(sim_webhooks_targets(w, SIM_TRIGGER_MESSAGE_DELIVERY, targets) == 1); /* only W3 now */
    sim_target_release(&targets[0]);
    wh = sim_webhooks_update(w, "W1", patch, "bogus", "sim-app", &err);
    CHECK(wh == NULL && strcmp(err.field, "update_mask") == 0);
    json_decref(patch);
    patch = json_loads("{\"target\":\"http://127.0.0.1:1/b\"}", 0, NULL);
    wh = sim_webhooks_update(w, "W1", patch, "", "sim-app", &err);
    CHECK(wh == NULL && err.status == 400 && strcmp(err.field, "target") == 0);
    json_decref(patch);
    patch = json_loads("{\"secret\":null,\"target_type\":\"HTTP\"}", 0, NULL);
    wh = sim_webhooks_update(w, "W5", patch, "", "sim-app", &err);
    CHECK(wh && json_object_get(wh, "secret") == NULL &&
          sim_webhooks_subscribed(w, SIM_TRIGGER_CAPABILITY));
    json_decref(wh);
    wh = sim_webhooks_update(w, "NOPE", patch, "", "sim-app", &err);
    CHECK(wh == NULL && err.status == 404);
    json_decref(patch);

    CHECK(sim_webhooks_delete(w, "W3"));
    CHECK(!sim_webhooks_delete(w, "W3"));
    json_t *list = sim_webhooks_list(w);
    CHECK(json_array_size(list) == 4 && strcmp(at_str(list, "2.id"), "W4") == 0);
    json_decref(list);
    sim_webhooks_free(w);

    /* --webhook-url takes every trigger, and unknown raw bodies too. */
    w = sim_webhooks_new("http://127.0.0.1:9/cli", "s3cret");
    CHECK(sim_webhooks_subscribed(w, SIM_TRIGGER_RECORD_NOTIFICATION));
    CHECK(sim_webhooks_targets(w, SIM_TRIGGER_UNKNOWN, targets) == 1 &&
          strcmp(targets[0].secret, "s3cret") == 0 && targets[0].webhook_id[0] == '\0');
    sim_target_release(&targets[0]);
    sim_webhooks_free(w);
}

int main(void)
{
    test_signatures();
    test_loopback();
    test_triggers();
    test_reports();
    test_inject();
    test_registry();
    return check_report();
}
