/* Unit tests of adapters/sinch/sinch_json.c: each command form to the exact messages:send body
 * (facts section 3), and Sinch's accepted and error answers back (3.4, 4.1).
 * Payloads and expected bodies are written with ' for " and turned back before use. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/sinch_json.h"
#include "bridge/command.h"
#include "check.h"

#define GEN_ID "gen-0001"
#define APP_ID "01J0M9S346Q3D25VT4F5V37E3S"

/* Built by hand: only the fields command.c and config.c's lookups read. */
static char mom[] = "mom", mom_number[] = "+46701234567";
static char whatsapp[] = "WHATSAPP";
static struct sb_contact contacts[] = {{.alias = mom, .number = mom_number}};
static struct sb_config cfg = {
    .default_channel = whatsapp,
    .contacts = contacts,
    .n_contacts = 1,
};

struct row {
    const char *name;
    const char *topic;   /* P/send/<topic>, or NULL for P/send */
    const char *payload; /* ' for " */
    long ttl_left;
    bool use_fallback;
    const char *body; /* the expected request, ' for " */
};

/* The parts every WhatsApp request to mom shares. */
#define WA_MOM                                                                                     \
    "'app_id':'" APP_ID "','recipient':{'identified_by':{'channel_identities':[{'channel':"        \
    "'WHATSAPP','identity':'46701234567'}]}},"
#define WA_ORDER "'channel_priority_order':['WHATSAPP'],"
#define META(id) "'message_metadata':'{\\'id\\':\\'" id "\\'}','correlation_id':'" id "'"

static const struct row rows[] = {
    {"text", NULL, "{'id':'freezer-alarm-42','to':'+46701234567','text':'Freezer 3 is at -4 C'}",
     3600, false,
     "{" WA_MOM "'message':{'text_message':{'text':'Freezer 3 is at -4 C'}}," WA_ORDER META(
         "freezer-alarm-42") ",'ttl':'3600s'}"},
    {"ttl_left 0: no ttl", NULL, "{'id':'t0','to':'mom','text':'hi'}", 0, false,
     "{" WA_MOM "'message':{'text_message':{'text':'hi'}}," WA_ORDER META("t0") "}"},
    {"ttl_left 1: 3s", NULL, "{'id':'t1','to':'mom','text':'hi'}", 1, false,
     "{" WA_MOM "'message':{'text_message':{'text':'hi'}}," WA_ORDER META("t1") ",'ttl':'3s'}"},
    {"ttl_left 3: 3s", NULL, "{'id':'t3','to':'mom','text':'hi'}", 3, false,
     "{" WA_MOM "'message':{'text_message':{'text':'hi'}}," WA_ORDER META("t3") ",'ttl':'3s'}"},
    {"ttl_left 4: 4s", NULL, "{'id':'t4','to':'mom','text':'hi'}", 4, false,
     "{" WA_MOM "'message':{'text_message':{'text':'hi'}}," WA_ORDER META("t4") ",'ttl':'4s'}"},
    {"ttl_left past Sinch's maximum", NULL, "{'id':'tm','to':'mom','text':'hi'}", 400000000000L,
     false,
     "{" WA_MOM
     "'message':{'text_message':{'text':'hi'}}," WA_ORDER META("tm") ",'ttl':'315576000000s'}"},
    {"plain text on an alias topic, generated id", "mom", "Freezer 3: {oops} \xe2\x82\xac", 0,
     false,
     "{" WA_MOM
     "'message':{'text_message':{'text':'Freezer 3: {oops} \xe2\x82\xac'}}," WA_ORDER META(
         GEN_ID) "}"},
    {"plain text, digits topic", "15551234567", "42", 0, false,
     "{'app_id':'" APP_ID "','recipient':{'identified_by':{'channel_identities':[{'channel':"
     "'WHATSAPP','identity':'15551234567'}]}},'message':{'text_message':{'text':'42'}}," WA_ORDER
         META(GEN_ID) "}"},
    {"metadata", NULL, "{'id':'m1','to':'mom','text':'hi','metadata':'zone=3 \\'cold\\' \xc3\xa4'}",
     0, false,
     "{" WA_MOM "'message':{'text_message':{'text':'hi'}}," WA_ORDER
     "'message_metadata':'{\\'id\\':\\'m1\\',\\'metadata\\':\\'zone=3 \\\\\\'cold\\\\\\' "
     "\xc3\xa4\\'}','correlation_id':'m1'}"},
    {"empty metadata", NULL, "{'id':'m2','to':'mom','text':'hi','metadata':''}", 0, false,
     "{" WA_MOM "'message':{'text_message':{'text':'hi'}}," WA_ORDER
     "'message_metadata':'{\\'id\\':\\'m2\\',\\'metadata\\':\\'\\'}','correlation_id':'m2'}"},
    {"SMS fallback identities", NULL,
     "{'id':'f1','to':'+46701234567','channels':['WHATSAPP','sms'],'text':'hi'}", 60, false,
     "{'app_id':'" APP_ID "','recipient':{'identified_by':{'channel_identities':[{'channel':"
     "'WHATSAPP','identity':'46701234567'},{'channel':'SMS','identity':'46701234567'}]}},"
     "'message':{'text_message':{'text':'hi'}},'channel_priority_order':['WHATSAPP','SMS'],"
     "" META("f1") ",'ttl':'60s'}"},
    {"contact_id", NULL, "{'id':'k1','contact_id':'01J0NPZX45HY43KWJRP1XPA7Z3','text':'hi'}", 0,
     false,
     "{'app_id':'" APP_ID "','recipient':{'contact_id':'01J0NPZX45HY43KWJRP1XPA7Z3'},"
     "'message':{'text_message':{'text':'hi'}}," WA_ORDER META("k1") "}"},
    {"media", NULL, "{'id':'i1','to':'mom','media':{'url':'https://files.example.com/a.jpg'}}", 0,
     false,
     "{" WA_MOM
     "'message':{'media_message':{'url':'https://files.example.com/a.jpg'}}," WA_ORDER META(
         "i1") "}"},
    {"media with caption: a card", NULL,
     "{'id':'i2','to':'mom','media':{'url':'https://files.example.com/a.jpg','caption':'Cam 3'}}",
     0, false,
     "{" WA_MOM "'message':{'card_message':{'description':'Cam 3','media_message':{'url':"
     "'https://files.example.com/a.jpg'}}}," WA_ORDER META("i2") "}"},
    {"template WhatsApp", NULL,
     "{'id':'w1','to':'mom','template':{'id':'freezer_alarm','language':'en_US','version':'3',"
     "'params':{'body[1]text':'Freezer 3','button[0]quick_reply[1]payload':''}}}",
     0, false,
     "{" WA_MOM "'message':{'template_message':{'channel_template':{'WHATSAPP':{'template_id':"
     "'freezer_alarm','language_code':'en_US','parameters':{'body[1]text':'Freezer 3',"
     "'button[0]quick_reply[1]payload':''},'version':'3'}}}}," WA_ORDER META("w1") "}"},
    {"template WhatsApp without params or version", NULL,
     "{'id':'w2','to':'mom','template':{'id':'hello_world','language':'en'}}", 0, false,
     "{" WA_MOM "'message':{'template_message':{'channel_template':{'WHATSAPP':{'template_id':"
     "'hello_world','language_code':'en','parameters':{}}}}}," WA_ORDER META("w2") "}"},
    {"template SMS: omni, version latest", NULL,
     "{'id':'o1','to':'mom','channel':'SMS','template':{'id':'01J0S3C4DWA7N36096Q14DR9GP'}}", 0,
     false,
     "{'app_id':'" APP_ID "','recipient':{'identified_by':{'channel_identities':[{'channel':"
     "'SMS','identity':'46701234567'}]}},'message':{'template_message':{'omni_template':{"
     "'template_id':'01J0S3C4DWA7N36096Q14DR9GP','version':'latest','parameters':{}}}},"
     "'channel_priority_order':['SMS']," META("o1") "}"},
    {"template RCS: omni with language, version, params", NULL,
     "{'id':'o2','contact_id':'C1','channel':'RCS','template':{'id':'T','language':'en-US',"
     "'version':'2','params':{'device':'Freezer 3'}}}",
     0, false,
     "{'app_id':'" APP_ID "','recipient':{'contact_id':'C1'},'message':{'template_message':{"
     "'omni_template':{'template_id':'T','version':'2','language_code':'en-US','parameters':{"
     "'device':'Freezer 3'}}}},'channel_priority_order':['RCS']," META("o2") "}"},
    {"choice", NULL,
     "{'id':'freezer-alarm-42','to':'mom','choice':{'text':'Alarm! Freezer 3 is at -4 C',"
     "'options':['Acknowledge','Snooze']}}",
     0, false,
     "{" WA_MOM "'message':{'choice_message':{'text_message':{'text':'Alarm! Freezer 3 is at -4 "
     "C'},'choices':[{'text_message':{'text':'Acknowledge'},'postback_data':'freezer-alarm-42|0|"
     "Acknowledge'},{'text_message':{'text':'Snooze'},'postback_data':'freezer-alarm-42|1|Snooze'"
     "}]}}," WA_ORDER META("freezer-alarm-42") "}"},
    /* jansson writes reals with 17 significant digits: exact (Sinch reads the same double), if
     * not pretty. */
    {"location", NULL,
     "{'id':'l1','to':'mom','location':{'lat':59.3293,'lon':18.0686,'title':'Warehouse 2',"
     "'label':'Loading dock B'}}",
     0, false,
     "{" WA_MOM
     "'message':{'location_message':{'coordinates':{'latitude':59.329300000000003,'longitude':"
     "18.0686},'title':'Warehouse 2','label':'Loading dock B'}}," WA_ORDER META("l1") "}"},
    {"location without title: Location", NULL,
     "{'id':'l2','to':'mom','location':{'lat':-90,'lon':0}}", 0, false,
     "{" WA_MOM "'message':{'location_message':{'coordinates':{'latitude':-90.0,'longitude':0.0},"
     "'title':'Location'}}," WA_ORDER META("l2") "}"},
    {"raw message, as is", NULL,
     "{'id':'r1','to':'mom','message':{'list_message':{'title':'Snooze?','sections':[{'items':[{"
     "'choice':{'title':'10 minutes','postback_data':'s10'}}]}]},'agent':{'display_name':'Bot'}}}",
     0, false,
     "{" WA_MOM "'message':{'list_message':{'title':'Snooze?','sections':[{'items':[{'choice':{"
     "'title':'10 minutes','postback_data':'s10'}}]}]},'agent':{'display_name':'Bot'}}," WA_ORDER
         META("r1") "}"},
    {"fallback template instead of text", NULL,
     "{'id':'b1','to':'mom','text':'hi','fallback_template':{'id':'freezer_alarm','language':"
     "'en_US','params':{'body[1]text':'Freezer 3'}}}",
     120, true,
     "{" WA_MOM "'message':{'template_message':{'channel_template':{'WHATSAPP':{'template_id':"
     "'freezer_alarm','language_code':'en_US','parameters':{'body[1]text':'Freezer 3'}}}}},"
     "" WA_ORDER META("b1") ",'ttl':'120s'}"},
    {"the same command without the fallback", NULL,
     "{'id':'b1','to':'mom','text':'hi','fallback_template':{'id':'freezer_alarm','language':"
     "'en_US','params':{'body[1]text':'Freezer 3'}}}",
     120, false,
     "{" WA_MOM "'message':{'text_message':{'text':'hi'}}," WA_ORDER META("b1") ",'ttl':'120s'}"},
    {"fallback template, SMS first: omni", NULL,
     "{'id':'b2','to':'mom','channel':'SMS','choice':{'text':'t','options':['a']},"
     "'fallback_template':{'id':'T1','version':'4'}}",
     0, true,
     "{'app_id':'" APP_ID "','recipient':{'identified_by':{'channel_identities':[{'channel':"
     "'SMS','identity':'46701234567'}]}},'message':{'template_message':{'omni_template':{"
     "'template_id':'T1','version':'4','parameters':{}}}},'channel_priority_order':['SMS'],"
     "" META("b2") "}"},
};

/* s with every ' turned into ". New string. */
static char *dq(const char *s)
{
    char *d = strdup(s);

    for (char *p = d; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    return d;
}

/* A JSON text in one canonical form (sorted keys, compact), or NULL if it is not JSON. */
static char *canon(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    char *s = v ? json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT) : NULL;

    if (!v) {
        fprintf(stderr, "not JSON (%s): %s\n", jerr.text, text);
    }
    json_decref(v);
    return s;
}

/* Parses a command the way the router does. Returns false (and says why) when it is refused. */
static bool parse(const char *topic, const char *payload_q, struct sb_command *cmd)
{
    char *payload = topic ? strdup(payload_q) : dq(payload_q);
    struct sb_command_error err;
    enum sb_err rc = sb_command_parse(&cfg, topic, payload, strlen(payload), GEN_ID, cmd, &err);

    if (rc != SB_OK) {
        fprintf(stderr, "command refused: %s: %s\n", err.code ? err.code : "", err.message);
    }
    free(payload);
    return rc == SB_OK;
}

static void run_row(const struct row *r)
{
    struct sb_command cmd;
    char *body = NULL;
    char *want = dq(r->body);
    char *got_c = NULL;
    char *want_c = canon(want);
    enum sb_err rc;

    CHECKF(want_c != NULL, "%s: the expected body is not JSON", r->name);
    CHECKF(parse(r->topic, r->payload, &cmd), "%s: command refused", r->name);
    rc = sb_sinch_json_send(&cmd, APP_ID, r->ttl_left, r->use_fallback, &body);
    CHECKF(rc == SB_OK && body != NULL, "%s: rc %d", r->name, rc);
    if (body) {
        got_c = canon(body);
        CHECKF(got_c && want_c && strcmp(got_c, want_c) == 0, "%s:\n got  %s\n want %s", r->name,
               got_c ? got_c : "(null)", want_c ? want_c : "(null)");
        /* Compact, UTF-8 kept: the one order we write is the one we expect, byte for byte. */
        CHECKF(strcmp(body, want) == 0, "%s: not byte for byte:\n got  %s\n want %s", r->name, body,
               want);
    }
    free(body);
    free(got_c);
    free(want_c);
    free(want);
    sb_command_clear(&cmd);
}

/* The longest metadata the parser lets through makes a message_metadata of exactly 1024. */
static void test_metadata_limit(void)
{
    char payload[1200];
    char meta[1000];
    struct sb_command cmd;
    char *body = NULL;
    json_t *root;
    const char *mm;

    memset(meta, 'x', 999);
    meta[999] = '\0';
    snprintf(payload, sizeof(payload), "{'id':'m1','to':'mom','text':'hi','metadata':'%s'}", meta);
    CHECK(parse(NULL, payload, &cmd));
    CHECK(sb_sinch_json_send(&cmd, APP_ID, 0, false, &body) == SB_OK);
    root = body ? json_loads(body, 0, NULL) : NULL;
    mm = json_string_value(json_object_get(root, "message_metadata"));
    CHECKF(mm && strlen(mm) == 1024, "message_metadata of %zu", mm ? strlen(mm) : 0);
    json_decref(root);
    free(body);
    sb_command_clear(&cmd);
}

static void test_send_refused(void)
{
    struct sb_command cmd;
    struct sb_command zero;
    char untouched[] = "untouched";
    char *body = untouched;

    memset(&zero, 0, sizeof(zero));
    CHECK(parse(NULL, "{'id':'x1','to':'mom','text':'hi'}", &cmd));
    /* No fallback_template to fall back to. */
    CHECK(sb_sinch_json_send(&cmd, APP_ID, 0, true, &body) == SB_E_INVAL);
    CHECK(body == NULL);
    /* Expired: the caller reports it, nothing is sent. */
    CHECK(sb_sinch_json_send(&cmd, APP_ID, -1, false, &body) == SB_E_INVAL);
    CHECK(body == NULL);
    CHECK(sb_sinch_json_send(&cmd, NULL, 0, false, &body) == SB_E_INVAL);
    CHECK(body == NULL);
    /* Neither a number nor a contact. */
    free(cmd.to);
    cmd.to = NULL;
    CHECK(sb_sinch_json_send(&cmd, APP_ID, 0, false, &body) == SB_E_INVAL);
    CHECK(body == NULL);
    /* A command that was never parsed. */
    CHECK(sb_sinch_json_send(&zero, APP_ID, 0, false, &body) == SB_E_INVAL);
    CHECK(body == NULL);
    sb_command_clear(&cmd);
}

struct accepted_row {
    const char *body; /* ' for " */
    enum sb_err rc;
    const char *message_id;
    const char *accepted_time;
};

static void test_accepted(void)
{
    static const struct accepted_row accepted[] = {
        {"{'message_id':'01J03E28JT97KB6CQ643DZVMXX','accepted_time':'2024-06-15T14:20:01.284Z'}",
         SB_OK, "01J03E28JT97KB6CQ643DZVMXX", "2024-06-15T14:20:01.284Z"},
        {"{'accepted_time':'2024-06-15T14:20:01.284Z','message_id':'01J03E28JT97KB6CQ643DZVMXX',"
         "'extra':[1,2]}",
         SB_OK, "01J03E28JT97KB6CQ643DZVMXX", "2024-06-15T14:20:01.284Z"},
        {"{'message_id':'M1'}", SB_OK, "M1", ""},
        {"{'message_id':'M1','accepted_time':null}", SB_OK, "M1", ""},
        {"{'message_id':'M1','accepted_time':17}", SB_OK, "M1", ""},
        {"", SB_E_INVAL, NULL, NULL},
        {"not JSON", SB_E_INVAL, NULL, NULL},
        {"<html>502 Bad Gateway</html>", SB_E_INVAL, NULL, NULL},
        {"{'message_id':'M1'", SB_E_INVAL, NULL, NULL},
        {"[{'message_id':'M1'}]", SB_E_INVAL, NULL, NULL},
        {"{}", SB_E_INVAL, NULL, NULL},
        {"{'accepted_time':'2024-06-15T14:20:01.284Z'}", SB_E_INVAL, NULL, NULL},
        {"{'message_id':''}", SB_E_INVAL, NULL, NULL},
        {"{'message_id':42}", SB_E_INVAL, NULL, NULL},
        {"{'message_id':null}", SB_E_INVAL, NULL, NULL},
        {"{'error':{'code':400,'message':'Invalid argument','status':'INVALID_ARGUMENT'}}",
         SB_E_INVAL, NULL, NULL},
    };
    char *id;
    char *at;

    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        char *body = dq(accepted[i].body);
        enum sb_err rc = sb_sinch_json_accepted(body, strlen(body), &id, &at);
        CHECKF(rc == accepted[i].rc, "accepted row %zu: rc %d", i, rc);
        if (accepted[i].rc == SB_OK) {
            CHECK_STR(id, accepted[i].message_id);
            CHECK_STR(at, accepted[i].accepted_time);
        } else {
            CHECKF(id == NULL && at == NULL, "accepted row %zu: outputs set", i);
        }
        free(id);
        free(at);
        free(body);
    }
    /* The length counts, not a NUL: a body cut short is refused. */
    CHECK(sb_sinch_json_accepted("{\"message_id\":\"M1\"}", 10, &id, &at) == SB_E_INVAL);
    CHECK(sb_sinch_json_accepted(NULL, 0, &id, &at) == SB_E_INVAL);
    CHECK(id == NULL && at == NULL);
}

struct error_row {
    const char *body;  /* ' for " */
    const char *inner; /* the expected error object, ' for ", or NULL */
};

static void test_error(void)
{
    static const struct error_row errors[] = {
        {"{'error':{'code':400,'message':'Invalid argument','status':'INVALID_ARGUMENT','details':"
         "[{'@type':'type.googleapis.com/google.rpc.BadRequest','field_violations':[{'field':"
         "'recipient','description':'Field is mandatory'}]}]}}",
         "{'code':400,'message':'Invalid argument','status':'INVALID_ARGUMENT','details':[{'@type'"
         ":'type.googleapis.com/google.rpc.BadRequest','field_violations':[{'field':'recipient',"
         "'description':'Field is mandatory'}]}]}"},
        {"{'error':{'code':429,'message':'Too many requests'}}",
         "{'code':429,'message':'Too many requests'}"},
        {"{'error':{}}", "{}"},
        {"{'error':'Bad Request'}", NULL},
        {"{'error':null}", NULL},
        {"{'message':'no error object'}", NULL},
        {"[{'error':{}}]", NULL},
        {"<html>502 Bad Gateway</html>", NULL},
        {"", NULL},
        {"{'error':{'code':400}", NULL},
    };

    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        char *body = dq(errors[i].body);
        json_t *e = sb_sinch_json_error(body, strlen(body));
        if (errors[i].inner) {
            char *inner = dq(errors[i].inner);
            json_t *want = json_loads(inner, 0, NULL);
            CHECKF(e && want && json_equal(e, want), "error row %zu", i);
            /* A reference of its own: it outlives the parsed body. */
            CHECKF(e && e->refcount == 1, "error row %zu: refcount", i);
            json_decref(want);
            free(inner);
        } else {
            CHECKF(e == NULL, "error row %zu: not NULL", i);
        }
        json_decref(e);
        free(body);
    }
    CHECK(sb_sinch_json_error(NULL, 0) == NULL);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        run_row(&rows[i]);
    }
    test_metadata_limit();
    test_send_refused();
    test_accepted();
    test_error();
    return check_report();
}
