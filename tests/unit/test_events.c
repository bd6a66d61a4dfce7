/* Unit tests of bridge/events.c: a table of webhook bodies (every trigger of facts 6.3, the
 * examples of facts section 7 compacted, our own for the rest, and bad rows) and what
 * sb_event_parse() makes of them; topic-level edge cases; sb_delivery_rank(). */
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/command.h"
#include "bridge/events.h"
#include "check.h"

/* Any 64 hex characters do: the parser only copies the caller's hash into the key. */
#define SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Built by hand: only what events.c and config.c's alias lookup read. */
static char prefix[] = "sinch";
static char mom[] = "mom", mom_number[] = "+46701234567";
static struct sb_contact contacts[] = {{.alias = mom, .number = mom_number}};
static struct sb_config cfg_mom = {.topic_prefix = prefix, .contacts = contacts, .n_contacts = 1};
static struct sb_config cfg_none = {.topic_prefix = prefix};

/* Bodies and expected payloads are written with ' for " (converted before use), so they read
 * like the JSON of the facts page; no row needs a real apostrophe. */
struct row {
    const char *name;
    const char *body;
    size_t len;       /* 0: strlen(body) after conversion; else bytes as they are */
    bool no_contacts; /* parse with cfg_none instead of cfg_mom */
    enum sb_err rc;   /* SB_OK or SB_E_INVAL */
    enum sb_event_kind kind;
    const char *trigger;
    const char *topic;
    const char *key;
    const char *payload; /* the expected payload minus "raw" */
    const char *channel; /* NULL: expected NULL; likewise below */
    const char *identity;
    const char *message_id;
    const char *status;
    const char *cmd_id;
};

#define ENV                                                                                        \
    "'app_id':'01J0M9S346Q3D25VT4F5V37E3S','project_id':'3f2a9c1e-7b4d-4e8a-9c2f-5d6e7f8a9b0c'"
#define WA_MOM "'channel_identity':{'channel':'WHATSAPP','identity':'46701234567','app_id':''}"

/* facts 7.3's text example with another contact_message and message.metadata. */
#define MSGX(cm, meta)                                                                             \
    "{" ENV ",'accepted_time':'2024-06-15T14:23:45.123Z','event_time':'2024-06-15T14:23:44Z',"     \
    "'message':{'id':'01J0QKFBF5KZNWJ47TAN9ZT24M','direction':'TO_APP','contact_message':" cm      \
    "," WA_MOM ",'conversation_id':'','contact_id':'','metadata':" meta ","                        \
    "'accept_time':'2024-06-15T14:23:45.101Z','processing_mode':'DISPATCH'},"                      \
    "'message_metadata':'','correlation_id':''}"
#define MSG(cm) MSGX(cm, "''")

/* The normalised fields every MSG() row shares. */
#define IN_HEAD                                                                                    \
    "'message_id':'01J0QKFBF5KZNWJ47TAN9ZT24M','from':'+46701234567','alias':'mom',"               \
    "'channel':'WHATSAPP','contact_id':'','conversation_id':'',"
#define IN_TIME "'time':'2024-06-15T14:23:45.101Z'"
#define IN_KEY  "MESSAGE_INBOUND:01J0QKFBF5KZNWJ47TAN9ZT24M"

/* An inbound message of one channel and identity, no times. */
#define MSG_FROM(channel, identity)                                                                \
    "{'message':{'id':'m1','contact_message':{'text_message':{'text':'hi'}},"                      \
    "'channel_identity':{'channel':'" channel "','identity':'" identity "'}}}"

#define INBOUND(name_, body_, topic_, key_, payload_)                                              \
    .name = (name_), .body = (body_), .kind = SB_EVENT_INBOUND, .trigger = "MESSAGE_INBOUND",      \
    .topic = (topic_), .key = (key_), .payload = (payload_)

/* facts 7.4's delivered example with another status, metadata and reason. */
#define DLRX(status_, meta, reason)                                                                \
    "{" ENV ",'accepted_time':'2024-06-15T14:20:04.456Z','event_time':'2024-06-15T14:20:03.912Z'," \
    "'message_delivery_report':{'message_id':'01J03E28JT97KB6CQ643DZVMXX','conversation_id':'',"   \
    "'status':'" status_ "'," WA_MOM ",'contact_id':''" reason ",'metadata':" meta ","             \
    "'processing_mode':'DISPATCH'},'message_metadata':'','correlation_id':'freezer-alarm-42'}"
#define DLR_HEAD(id_, status_)                                                                     \
    "'message_id':'01J03E28JT97KB6CQ643DZVMXX','id':" id_ ",'status':'" status_ "',"
#define DLR_TAIL(meta)                                                                             \
    "'channel':'WHATSAPP','to':'+46701234567','alias':'mom','metadata':" meta ","                  \
    "'time':'2024-06-15T14:20:03.912Z'"

#define DELIVERY(name_, body_, topic_, key_, payload_)                                             \
    .name = (name_), .body = (body_), .kind = SB_EVENT_DELIVERY, .trigger = "MESSAGE_DELIVERY",    \
    .topic = (topic_), .key = (key_), .payload = (payload_)

#define OTHER(name_, body_, trigger_, topic_, key_, payload_)                                      \
    .name = (name_), .body = (body_), .kind = SB_EVENT_OTHER, .trigger = (trigger_),               \
    .topic = (topic_), .key = (key_), .payload = (payload_)

#define BAD(name_, body_)                                                                          \
    {                                                                                              \
        .name = (name_), .body = (body_), .rc = SB_E_INVAL                                         \
    }
/* Bytes as they are (no ' conversion), the length from the literal: NULs and bad UTF-8. */
#define BAD_BYTES(name_, body_)                                                                    \
    {                                                                                              \
        .name = (name_), .body = (body_), .len = sizeof(body_) - 1, .rc = SB_E_INVAL               \
    }

static const struct row rows[] = {
    /* ---- MESSAGE_INBOUND ---- */
    {INBOUND("text (facts 7.3), alias", MSG("{'text_message':{'text':'Snooze 10 min'}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'text','text':'Snooze 10 min'," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("text, number without alias", MSG("{'text_message':{'text':'Snooze 10 min'}}"),
             "inbound/whatsapp/46701234567", IN_KEY,
             "{'message_id':'01J0QKFBF5KZNWJ47TAN9ZT24M','from':'+46701234567',"
             "'channel':'WHATSAPP','contact_id':'','conversation_id':'','kind':'text',"
             "'text':'Snooze 10 min'," IN_TIME "}"),
     .no_contacts = true, .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND(
         "media (facts 7.3)",
         "{" ENV ",'accepted_time':'2024-06-15T14:25:10.500Z','event_time':'2024-06-15T14:25:09Z',"
         "'message':{'id':'01J05GQAPENECFSECZP11HYGCP','direction':'TO_APP','contact_message':{"
         "'media_message':{'url':'https://media.example.invalid/inbound/"
         "01J05GQAPENECFSECZP11HYGCP.jpg'}}," WA_MOM ","
         "'conversation_id':'01J0DJ8FSSZ5AWSH8VHTPRE95B','contact_id':'01J0NPZX45HY43KWJRP1XPA7Z3',"
         "'metadata':'','accept_time':'2024-06-15T14:25:10.488Z','processing_mode':'CONVERSATION'}"
         "}",
         "inbound/whatsapp/mom", "MESSAGE_INBOUND:01J05GQAPENECFSECZP11HYGCP",
         "{'message_id':'01J05GQAPENECFSECZP11HYGCP','from':'+46701234567','alias':'mom',"
         "'channel':'WHATSAPP','contact_id':'01J0NPZX45HY43KWJRP1XPA7Z3',"
         "'conversation_id':'01J0DJ8FSSZ5AWSH8VHTPRE95B','kind':'media','media':{'url':"
         "'https://media.example.invalid/inbound/01J05GQAPENECFSECZP11HYGCP.jpg'},"
         "'time':'2024-06-15T14:25:10.488Z'}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("media with thumbnail and file name",
             MSG("{'media_message':{'url':'https://x.invalid/a.pdf','thumbnail_url':"
                 "'https://x.invalid/t.jpg','filename_override':'report.pdf'}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'media','media':{'url':'https://x.invalid/a.pdf','thumbnail_url':"
             "'https://x.invalid/t.jpg','filename_override':'report.pdf'}," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("media card with caption",
             MSG("{'media_card_message':{'url':'https://x.invalid/p.jpg','caption':'Dock B'}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'media','media':{'url':'https://x.invalid/p.jpg','caption':"
             "'Dock B'},'text':'Dock B'," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("media card without caption",
             MSG("{'media_card_message':{'url':'https://x.invalid/p.jpg'}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD
             "'kind':'media','media':{'url':'https://x.invalid/p.jpg','caption':null}," IN_TIME
             "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("location (facts 7.3)",
             MSG("{'location_message':{'title':'Warehouse 2','label':'Dock B','coordinates':"
                 "{'latitude':59.3293,'longitude':18.0686}}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'location','location':{'lat':59.3293,'lon':18.0686,'title':"
             "'Warehouse 2','label':'Dock B'}," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND(
         "location without label, coordinates of the wrong type",
         MSG("{'location_message':{'title':'W','coordinates':{'latitude':'59','longitude':18}}}"),
         "inbound/whatsapp/mom", IN_KEY,
         "{" IN_HEAD "'kind':'location','location':{'lat':null,'lon':18,'title':'W',"
         "'label':null}," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("quoted reply (facts 7.3)",
             MSG("{'text_message':{'text':'On my way'},'reply_to':{'message_id':"
                 "'01J03E28JT97KB6CQ643DZVMXX'}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD
             "'kind':'text','text':'On my way','reply_to':'01J03E28JT97KB6CQ643DZVMXX'," IN_TIME
             "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND(
         "choice, foreign postback, metadata not ours (facts 7.3)",
         "{" ENV ",'accepted_time':'2024-06-15T14:26:02.010Z','event_time':'2024-06-15T14:26:01Z',"
         "'message':{'id':'01J0WPQ5E6EYCNDY0YP57RCYBV','direction':'TO_APP','contact_message':{"
         "'choice_response_message':{'message_id':'01J03E28JT97KB6CQ643DZVMXX','postback_data':"
         "'snooze:freezer-alarm-42'}}," WA_MOM ",'conversation_id':'','contact_id':'',"
         "'metadata':'cmd:freezer-alarm-42','accept_time':'2024-06-15T14:26:01.990Z',"
         "'processing_mode':'DISPATCH'},'message_metadata':'','correlation_id':'freezer-alarm-42'}",
         "inbound/whatsapp/mom", "MESSAGE_INBOUND:01J0WPQ5E6EYCNDY0YP57RCYBV",
         "{'message_id':'01J0WPQ5E6EYCNDY0YP57RCYBV','from':'+46701234567','alias':'mom',"
         "'channel':'WHATSAPP','contact_id':'','conversation_id':'','kind':'choice','text':"
         "'snooze:freezer-alarm-42','choice':{'text':'snooze:freezer-alarm-42','postback':"
         "'snooze:freezer-alarm-42','index':null},'id':null,'time':'2024-06-15T14:26:01.990Z'}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "01J03E28JT97KB6CQ643DZVMXX"},
    {INBOUND("choice, foreign postback, our metadata names the command",
             MSGX("{'choice_response_message':{'message_id':'01J03E28JT97KB6CQ643DZVMXX',"
                  "'postback_data':'SNOOZE'}}",
                  "'{\\'id\\':\\'freezer-alarm-42\\',\\'metadata\\':\\'site 3\\'}'"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'choice','text':'SNOOZE','choice':{'text':'SNOOZE','postback':"
             "'SNOOZE','index':null},'id':'freezer-alarm-42'," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "01J03E28JT97KB6CQ643DZVMXX",
     .cmd_id = "freezer-alarm-42"},
    {INBOUND("choice, our postback",
             MSG("{'choice_response_message':{'message_id':'01J03E28JT97KB6CQ643DZVMXX',"
                 "'postback_data':'freezer-alarm-42|1|Snooze'}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'choice','text':'Snooze','choice':{'text':'Snooze','postback':"
             "'freezer-alarm-42|1|Snooze','index':1},'id':'freezer-alarm-42'," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "01J03E28JT97KB6CQ643DZVMXX",
     .cmd_id = "freezer-alarm-42"},
    {INBOUND("choice, our postback wins over the metadata, '|' in the option",
             MSGX("{'choice_response_message':{'message_id':'01J03E28JT97KB6CQ643DZVMXX',"
                  "'postback_data':'Az09._:-|0|Yes|No'}}",
                  "'{\\'id\\':\\'other\\'}'"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'choice','text':'Yes|No','choice':{'text':'Yes|No','postback':"
             "'Az09._:-|0|Yes|No','index':0},'id':'Az09._:-'," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "01J03E28JT97KB6CQ643DZVMXX",
     .cmd_id = "Az09._:-"},
    {INBOUND("choice, leading zero: not ours",
             MSG("{'choice_response_message':{'message_id':'t1','postback_data':'a|01|x'}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'choice','text':'a|01|x','choice':{'text':'a|01|x','postback':"
             "'a|01|x','index':null},'id':null," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "t1"},
    {INBOUND("choice, id with a space: not ours",
             MSG("{'choice_response_message':{'message_id':'t1','postback_data':'a b|0|x'}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'choice','text':'a b|0|x','choice':{'text':'a b|0|x','postback':"
             "'a b|0|x','index':null},'id':null," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "t1"},
    {INBOUND("choice, no index: not ours",
             MSG("{'choice_response_message':{'message_id':'t1','postback_data':'a||x'}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'choice','text':'a||x','choice':{'text':'a||x','postback':"
             "'a||x','index':null},'id':null," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "t1"},
    {INBOUND(
         "choice, 65-character id: not ours",
         MSG("{'choice_response_message':{'postback_data':"
             "'01234567890123456789012345678901234567890123456789012345678901234|0|x'}}"),
         "inbound/whatsapp/mom", IN_KEY,
         "{" IN_HEAD "'kind':'choice','text':"
         "'01234567890123456789012345678901234567890123456789012345678901234|0|x',"
         "'choice':{'text':'01234567890123456789012345678901234567890123456789012345678901234|0|x',"
         "'postback':'01234567890123456789012345678901234567890123456789012345678901234|0|x',"
         "'index':null},'id':null," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("choice, metadata JSON with a bad id",
             MSGX("{'choice_response_message':{'message_id':'t1','postback_data':'x'}}",
                  "'{\\'id\\':42}'"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'choice','text':'x','choice':{'text':'x','postback':'x',"
             "'index':null},'id':null," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "t1"},
    {INBOUND("choice, postback of the wrong type",
             MSG("{'choice_response_message':{'message_id':7,'postback_data':{}}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'choice','text':null,'choice':{'text':null,'postback':null,"
             "'index':null},'id':null," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("fallback (facts 7.3)",
             MSG("{'fallback_message':{'raw_message':'{\\'type\\':\\'unsupported\\'}','reason':"
                 "{'code':'UNSUPPORTED_OPERATION','description':'Message type not supported',"
                 "'sub_code':'UNSPECIFIED_SUB_CODE'}}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD
             "'kind':'fallback','fallback':{'raw_message':'{\\'type\\':\\'unsupported\\'}',"
             "'reason':{'code':'UNSUPPORTED_OPERATION','description':'Message type not supported',"
             "'sub_code':'UNSPECIFIED_SUB_CODE'}}," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("fallback, empty", MSG("{'fallback_message':{}}"), "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'fallback','fallback':{'raw_message':null,'reason':null}," IN_TIME
             "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("contact card",
             MSG("{'contact_info_message':{'name':{'full_name':'Ann Lee'},'phone_numbers':"
                 "[{'phone_number':'+15551234567','type':'CELL'}]}}"),
             "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'contact','contact':{'name':{'full_name':'Ann Lee'},"
             "'phone_numbers':[{'phone_number':'+15551234567','type':'CELL'}]},'text':'Ann "
             "Lee'," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("product response", MSG("{'product_response_message':{'products':[]}}"),
             "inbound/whatsapp/mom", IN_KEY, "{" IN_HEAD "'kind':'other'," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("channel specific (Flows reply)",
             MSG("{'channel_specific_message':{'message_type':'nfm_reply','message':{}}}"),
             "inbound/whatsapp/mom", IN_KEY, "{" IN_HEAD "'kind':'other'," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("unknown content, text_message of the wrong type",
             MSG("{'text_message':'hi','sticker_message':{}}"), "inbound/whatsapp/mom", IN_KEY,
             "{" IN_HEAD "'kind':'other'," IN_TIME "}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {INBOUND("Messenger PSID with / + # in it", MSG_FROM("MESSENGER", "12/34+5#6"),
             "inbound/messenger/12_34_5_6", "MESSAGE_INBOUND:m1",
             "{'message_id':'m1','from':'12/34+5#6','channel':'MESSENGER','contact_id':null,"
             "'conversation_id':null,'kind':'text','text':'hi','time':null}"),
     .channel = "MESSENGER", .identity = "12/34+5#6"},
    {INBOUND("Telegram chat id that looks like E.164", MSG_FROM("TELEGRAM", "123456789"),
             "inbound/telegram/123456789", "MESSAGE_INBOUND:m1",
             "{'message_id':'m1','from':'123456789','channel':'TELEGRAM','contact_id':null,"
             "'conversation_id':null,'kind':'text','text':'hi','time':null}"),
     .channel = "TELEGRAM", .identity = "123456789"},
    {INBOUND("control characters and UTF-8 in an identity",
             MSG_FROM("LINE", "a\\u0001b\\u007fc\\u0085d\xc3\xa5"), "inbound/line/a_b_c_d\xc3\xa5",
             "MESSAGE_INBOUND:m1",
             "{'message_id':'m1','from':'a\\u0001b\\u007fc\\u0085d\xc3\xa5','channel':'LINE',"
             "'contact_id':null,'conversation_id':null,'kind':'text','text':'hi','time':null}"),
     .channel = "LINE",
     .identity = "a\x01"
                 "b\x7f"
                 "c\xc2\x85"
                 "d\xc3\xa5"},
    {INBOUND("SMS with +, lower-case channel", MSG_FROM("sms", "+15551234567"),
             "inbound/sms/15551234567", "MESSAGE_INBOUND:m1",
             "{'message_id':'m1','from':'+15551234567','channel':'SMS','contact_id':null,"
             "'conversation_id':null,'kind':'text','text':'hi','time':null}"),
     .channel = "SMS", .identity = "+15551234567"},
    {INBOUND("SMS short code", MSG_FROM("SMS", "72345"), "inbound/sms/72345", "MESSAGE_INBOUND:m1",
             "{'message_id':'m1','from':'72345','channel':'SMS','contact_id':null,"
             "'conversation_id':null,'kind':'text','text':'hi','time':null}"),
     .channel = "SMS", .identity = "72345"},
    {INBOUND("alias on another channel (VIBERBM)", MSG_FROM("VIBERBM", "46701234567"),
             "inbound/viberbm/mom", "MESSAGE_INBOUND:m1",
             "{'message_id':'m1','from':'+46701234567','alias':'mom','channel':'VIBERBM',"
             "'contact_id':null,'conversation_id':null,'kind':'text','text':'hi','time':null}"),
     .channel = "VIBERBM", .identity = "+46701234567"},
    {INBOUND("empty identity and channel",
             "{'message':{'id':'m1','contact_message':{'text_message':{'text':'hi'}},"
             "'channel_identity':{'channel':'','identity':''}}}",
             "inbound/unknown/unknown", "MESSAGE_INBOUND:m1",
             "{'message_id':'m1','from':null,'channel':null,'contact_id':null,"
             "'conversation_id':null,'kind':'text','text':'hi','time':null}")},
    {INBOUND("time: the envelope's accepted_time without accept_time",
             "{'accepted_time':'T1','event_time':'T2','message':{'id':'m1','accept_time':''}}",
             "inbound/unknown/unknown", "MESSAGE_INBOUND:m1",
             "{'message_id':'m1','from':null,'channel':null,'contact_id':null,"
             "'conversation_id':null,'kind':'other','time':'T1'}")},
    {INBOUND("time: event_time last", "{'accepted_time':7,'event_time':'T2','message':{'id':'m1'}}",
             "inbound/unknown/unknown", "MESSAGE_INBOUND:m1",
             "{'message_id':'m1','from':null,'channel':null,'contact_id':null,"
             "'conversation_id':null,'kind':'other','time':'T2'}")},
    {INBOUND("message of the wrong type", "{'message':42}", "inbound/unknown/unknown",
             "MESSAGE_INBOUND:sha256:" SHA,
             "{'message_id':null,'from':null,'channel':null,'contact_id':null,"
             "'conversation_id':null,'kind':'other','time':null}")},
    {INBOUND("message null", "{'message':null}", "inbound/unknown/unknown",
             "MESSAGE_INBOUND:sha256:" SHA,
             "{'message_id':null,'from':null,'channel':null,'contact_id':null,"
             "'conversation_id':null,'kind':'other','time':null}")},
    {INBOUND("fields of the wrong type",
             "{'message':{'id':5,'channel_identity':'x','contact_id':[],'contact_message':[1],"
             "'accept_time':{}}}",
             "inbound/unknown/unknown", "MESSAGE_INBOUND:sha256:" SHA,
             "{'message_id':null,'from':null,'channel':null,'contact_id':null,"
             "'conversation_id':null,'kind':'other','time':null}")},
    {INBOUND("empty message id", "{'message':{'id':'','channel_identity':{'channel':'WHATSAPP'}}}",
             "inbound/whatsapp/unknown", "MESSAGE_INBOUND:sha256:" SHA,
             "{'message_id':'','from':null,'channel':'WHATSAPP','contact_id':null,"
             "'conversation_id':null,'kind':'other','time':null}"),
     .channel = "WHATSAPP"},

    /* ---- MESSAGE_DELIVERY ---- */
    {DELIVERY("delivered (facts 7.4), metadata not ours",
              DLRX("DELIVERED", "'cmd:freezer-alarm-42'", ""), "delivery/whatsapp/mom",
              "MESSAGE_DELIVERY:01J03E28JT97KB6CQ643DZVMXX|DELIVERED|WHATSAPP",
              "{" DLR_HEAD("null", "DELIVERED") "'reason':null," DLR_TAIL("null") "}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "01J03E28JT97KB6CQ643DZVMXX",
     .status = "DELIVERED"},
    {DELIVERY(
         "delivered, our metadata",
         DLRX("DELIVERED", "'{\\'id\\':\\'freezer-alarm-42\\',\\'metadata\\':\\'site 3\\'}'", ""),
         "delivery/whatsapp/mom", "MESSAGE_DELIVERY:01J03E28JT97KB6CQ643DZVMXX|DELIVERED|WHATSAPP",
         "{" DLR_HEAD("'freezer-alarm-42'", "DELIVERED") "'reason':null," DLR_TAIL("'site 3'") "}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "01J03E28JT97KB6CQ643DZVMXX",
     .status = "DELIVERED", .cmd_id = "freezer-alarm-42"},
    {DELIVERY("read, our metadata with the id only", DLRX("READ", "'{\\'id\\':\\'a1\\'}'", ""),
              "delivery/whatsapp/mom", "MESSAGE_DELIVERY:01J03E28JT97KB6CQ643DZVMXX|READ|WHATSAPP",
              "{" DLR_HEAD("'a1'", "READ") "'reason':null," DLR_TAIL("null") "}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "01J03E28JT97KB6CQ643DZVMXX",
     .status = "READ", .cmd_id = "a1"},
    {DELIVERY("queued, no metadata at all",
              "{'event_time':'T','message_delivery_report':{'message_id':'x1','status':"
              "'QUEUED_ON_CHANNEL'," WA_MOM "}}",
              "delivery/whatsapp/46701234567", "MESSAGE_DELIVERY:x1|QUEUED_ON_CHANNEL|WHATSAPP",
              "{'message_id':'x1','id':null,'status':'QUEUED_ON_CHANNEL','reason':null,"
              "'channel':'WHATSAPP','to':'+46701234567','metadata':null,'time':'T'}"),
     .no_contacts = true, .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "x1",
     .status = "QUEUED_ON_CHANNEL"},
    {DELIVERY("failed (facts 7.4), the key has reason.code",
              "{" ENV ",'accepted_time':'2024-06-15T14:30:06.374Z','event_time':"
              "'2024-06-15T14:30:07Z','message_delivery_report':{'message_id':"
              "'01J0B9Y73MY63FCH26W14WMCHW','conversation_id':'','status':'FAILED'," WA_MOM ","
              "'contact_id':'','reason':{'code':'OUTSIDE_ALLOWED_SENDING_WINDOW','description':"
              "'The underlying channel reported: more than 24 hours have passed since the "
              "customer last replied','sub_code':'UNSPECIFIED_SUB_CODE','channel_code':'131047'},"
              "'metadata':'cmd:freezer-alarm-43','processing_mode':'DISPATCH'},"
              "'message_metadata':'','correlation_id':'freezer-alarm-43'}",
              "delivery/whatsapp/mom",
              "MESSAGE_DELIVERY:01J0B9Y73MY63FCH26W14WMCHW|FAILED|WHATSAPP|"
              "OUTSIDE_ALLOWED_SENDING_WINDOW",
              "{'message_id':'01J0B9Y73MY63FCH26W14WMCHW','id':null,'status':'FAILED','reason':{"
              "'code':'OUTSIDE_ALLOWED_SENDING_WINDOW','description':'The underlying channel "
              "reported: more than 24 hours have passed since the customer last replied',"
              "'sub_code':'UNSPECIFIED_SUB_CODE','channel_code':'131047'},'channel':'WHATSAPP',"
              "'to':'+46701234567','alias':'mom','metadata':null,'time':'2024-06-15T14:30:07Z'}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "01J0B9Y73MY63FCH26W14WMCHW",
     .status = "FAILED"},
    {DELIVERY("switching channel (facts 7.4), time from accepted_time",
              "{" ENV ",'accepted_time':'2024-06-15T14:31:00.100Z','message_delivery_report':{"
              "'message_id':'01J0B9Y73MY63FCH26W14WMCHW','conversation_id':'','status':"
              "'SWITCHING_CHANNEL'," WA_MOM ",'contact_id':'','reason':{'code':"
              "'RECIPIENT_NOT_REACHABLE','description':'Recipient is not a WhatsApp user',"
              "'sub_code':'UNSPECIFIED_SUB_CODE'},'metadata':'cmd:freezer-alarm-44',"
              "'processing_mode':'DISPATCH'}}",
              "delivery/whatsapp/mom",
              "MESSAGE_DELIVERY:01J0B9Y73MY63FCH26W14WMCHW|SWITCHING_CHANNEL|WHATSAPP|"
              "RECIPIENT_NOT_REACHABLE",
              "{'message_id':'01J0B9Y73MY63FCH26W14WMCHW','id':null,'status':'SWITCHING_CHANNEL',"
              "'reason':{'code':'RECIPIENT_NOT_REACHABLE','description':"
              "'Recipient is not a WhatsApp user','sub_code':'UNSPECIFIED_SUB_CODE'},"
              "'channel':'WHATSAPP','to':'+46701234567','alias':'mom','metadata':null,"
              "'time':'2024-06-15T14:31:00.100Z'}"),
     .channel = "WHATSAPP", .identity = "+46701234567", .message_id = "01J0B9Y73MY63FCH26W14WMCHW",
     .status = "SWITCHING_CHANNEL"},
    {DELIVERY("failed without a reason, reason of the wrong type",
              "{'message_delivery_report':{'message_id':'x1','status':'FAILED','reason':'bad',"
              "'channel_identity':{'channel':'SMS','identity':'15551234567'}}}",
              "delivery/sms/15551234567", "MESSAGE_DELIVERY:x1|FAILED|SMS|",
              "{'message_id':'x1','id':null,'status':'FAILED','reason':null,'channel':'SMS',"
              "'to':'+15551234567','metadata':null,'time':null}"),
     .channel = "SMS", .identity = "+15551234567", .message_id = "x1", .status = "FAILED"},
    {DELIVERY("no message id: hashed",
              "{'message_delivery_report':{'status':'READ','metadata':'{oops'}}",
              "delivery/unknown/unknown", "MESSAGE_DELIVERY:sha256:" SHA,
              "{'message_id':null,'id':null,'status':'READ','reason':null,'channel':null,"
              "'to':null,'metadata':null,'time':null}"),
     .status = "READ"},
    {DELIVERY("Messenger recipient",
              "{'message_delivery_report':{'message_id':'x1','status':'DELIVERED',"
              "'channel_identity':{'channel':'MESSENGER','identity':'5551/23'}}}",
              "delivery/messenger/5551_23", "MESSAGE_DELIVERY:x1|DELIVERED|MESSENGER",
              "{'message_id':'x1','id':null,'status':'DELIVERED','reason':null,"
              "'channel':'MESSENGER','to':'5551/23','metadata':null,'time':null}"),
     .channel = "MESSENGER", .identity = "5551/23", .message_id = "x1", .status = "DELIVERED"},
    {DELIVERY("report of the wrong type", "{'message_delivery_report':[]}",
              "delivery/unknown/unknown", "MESSAGE_DELIVERY:sha256:" SHA,
              "{'message_id':null,'id':null,'status':null,'reason':null,'channel':null,"
              "'to':null,'metadata':null,'time':null}")},

    /* ---- every other trigger of facts 6.3 ---- */
    {OTHER("MESSAGE_SUBMIT (facts 7.5)",
           "{" ENV ",'accepted_time':'2024-06-15T14:20:01.900Z','message_submit_notification':{"
           "'message_id':'01J03E28JT97KB6CQ643DZVMXX','conversation_id':''," WA_MOM ","
           "'contact_id':'','submitted_message':{'text_message':{'text':'Freezer 3 is at -4 C'}},"
           "'metadata':'cmd:freezer-alarm-42','processing_mode':'DISPATCH'}}",
           "MESSAGE_SUBMIT", "event/message_submit",
           "MESSAGE_SUBMIT:01J03E28JT97KB6CQ643DZVMXX|WHATSAPP",
           "{'trigger':'MESSAGE_SUBMIT','time':'2024-06-15T14:20:01.900Z'}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {OTHER("EVENT_INBOUND (facts 7.6)",
           "{" ENV
           ",'accepted_time':'2024-06-15T14:22:58.200Z','event_time':'2024-06-15T14:22:58Z',"
           "'event':{'id':'01J0QY77ZXYYK596NGYA1DQ91K','direction':'TO_APP','contact_event':{"
           "'composing_event':{}}," WA_MOM ",'contact_id':'','conversation_id':'','accept_time':"
           "'2024-06-15T14:22:58.180Z','processing_mode':'DISPATCH'}}",
           "EVENT_INBOUND", "event/event_inbound", "EVENT_INBOUND:01J0QY77ZXYYK596NGYA1DQ91K",
           "{'trigger':'EVENT_INBOUND','time':'2024-06-15T14:22:58Z'}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {OTHER("EVENT_DELIVERY",
           "{'accepted_time':'T','event_delivery_report':{'event_id':'e1','status':'DELIVERED',"
           "'channel_identity':{'channel':'MESSENGER','identity':'psid1'}}}",
           "EVENT_DELIVERY", "event/event_delivery", "EVENT_DELIVERY:e1|DELIVERED",
           "{'trigger':'EVENT_DELIVERY','time':'T'}"),
     .channel = "MESSENGER", .identity = "psid1"},
    {OTHER(
         "CONVERSATION_START (facts 7.7)",
         "{" ENV ",'accepted_time':'2024-06-15T14:25:10.300Z','conversation_start_notification':{"
         "'conversation':{'id':'01J0DJ8FSSZ5AWSH8VHTPRE95B','app_id':'01J0M9S346Q3D25VT4F5V37E3S',"
         "'contact_id':'01J0NPZX45HY43KWJRP1XPA7Z3','active_channel':'WHATSAPP','active':true,"
         "'last_received':'2024-06-15T14:25:09Z','metadata':'','metadata_json':{'site':"
         "'warehouse-2'},'correlation_id':''}}}",
         "CONVERSATION_START", "event/conversation_start", "CONVERSATION_START:sha256:" SHA,
         "{'trigger':'CONVERSATION_START','time':'2024-06-15T14:25:10.300Z'}"),
     .channel = "WHATSAPP"},
    {OTHER("CONVERSATION_STOP",
           "{'conversation_stop_notification':{'conversation':{'id':'c1','active':false}}}",
           "CONVERSATION_STOP", "event/conversation_stop", "CONVERSATION_STOP:sha256:" SHA,
           "{'trigger':'CONVERSATION_STOP','time':null}")},
    {OTHER("CONVERSATION_DELETE",
           "{'event_time':'T','conversation_delete_notification':{'conversation':{'id':'c1'}}}",
           "CONVERSATION_DELETE", "event/conversation_delete", "CONVERSATION_DELETE:sha256:" SHA,
           "{'trigger':'CONVERSATION_DELETE','time':'T'}")},
    {OTHER("CONTACT_CREATE (facts 7.8)",
           "{" ENV ",'accepted_time':'2024-06-15T14:25:10.200Z','contact_create_notification':{"
           "'contact':{'id':'01J0NPZX45HY43KWJRP1XPA7Z3','channel_identities':["
           "{'channel':'WHATSAPP','identity':'46701234567','app_id':''}],'channel_priority':["
           "'WHATSAPP'],'display_name':'Unknown','email':'','external_id':'','metadata':'',"
           "'language':'UNSPECIFIED'}}}",
           "CONTACT_CREATE", "event/contact_create", "CONTACT_CREATE:sha256:" SHA,
           "{'trigger':'CONTACT_CREATE','time':'2024-06-15T14:25:10.200Z'}")},
    {OTHER("CONTACT_DELETE", "{'contact_delete_notification':{'contact':{'id':'k1'}}}",
           "CONTACT_DELETE", "event/contact_delete", "CONTACT_DELETE:sha256:" SHA,
           "{'trigger':'CONTACT_DELETE','time':null}")},
    {OTHER("CONTACT_MERGE",
           "{'contact_merge_notification':{'preserved_contact':{'id':'k1'},'deleted_contact':{"
           "'id':'k2'}}}",
           "CONTACT_MERGE", "event/contact_merge", "CONTACT_MERGE:sha256:" SHA,
           "{'trigger':'CONTACT_MERGE','time':null}")},
    {OTHER("CONTACT_UPDATE", "{'contact_update_notification':{'contact':{'id':'k1'}}}",
           "CONTACT_UPDATE", "event/contact_update", "CONTACT_UPDATE:sha256:" SHA,
           "{'trigger':'CONTACT_UPDATE','time':null}")},
    {OTHER("CONTACT_IDENTITIES_DUPLICATION",
           "{'duplicated_contact_identities_notification':{'duplicated_identities':[{'channel':"
           "'SMS','contact_ids':['k1','k2']}]}}",
           "CONTACT_IDENTITIES_DUPLICATION", "event/contact_identities_duplication",
           "CONTACT_IDENTITIES_DUPLICATION:sha256:" SHA,
           "{'trigger':'CONTACT_IDENTITIES_DUPLICATION','time':null}")},
    {OTHER("CAPABILITY",
           "{'accepted_time':'T','capability_notification':{'request_id':'r1','contact_id':'',"
           "'channel':'WHATSAPP','identity':'15551234567','capability_status':'CAPABILITY_FULL',"
           "'channel_capabilities':[]}}",
           "CAPABILITY", "event/capability", "CAPABILITY:r1|CAPABILITY_FULL",
           "{'trigger':'CAPABILITY','time':'T'}"),
     .channel = "WHATSAPP", .identity = "+15551234567"},
    {OTHER("OPT_IN",
           "{'opt_in_notification':{'request_id':'r2','channel':'VIBERBM','identity':"
           "'46701234567','status':'OPT_IN_SUCCEEDED'}}",
           "OPT_IN", "event/opt_in", "OPT_IN:r2|OPT_IN_SUCCEEDED",
           "{'trigger':'OPT_IN','time':null}"),
     .channel = "VIBERBM", .identity = "+46701234567"},
    {OTHER("OPT_OUT (facts 7.9)",
           "{" ENV ",'accepted_time':'2024-06-15T15:45:00.456Z','opt_out_notification':{"
           "'request_id':'01J0CD1GDJFMGT83PXT891WB09','contact_id':'','channel':'VIBERBM',"
           "'identity':'46701234567','status':'OPT_OUT_SUCCEEDED','processing_mode':'DISPATCH'}}",
           "OPT_OUT", "event/opt_out", "OPT_OUT:01J0CD1GDJFMGT83PXT891WB09|OPT_OUT_SUCCEEDED",
           "{'trigger':'OPT_OUT','time':'2024-06-15T15:45:00.456Z'}"),
     .channel = "VIBERBM", .identity = "+46701234567"},
    {OTHER("OPT_OUT without request_id: hashed",
           "{'opt_out_notification':{'request_id':'','status':'OPT_OUT_FAILED'}}", "OPT_OUT",
           "event/opt_out", "OPT_OUT:sha256:" SHA, "{'trigger':'OPT_OUT','time':null}")},
    {OTHER("CHANNEL_EVENT (facts 7.12)",
           "{" ENV
           ",'accepted_time':'2024-06-15T17:00:00.000Z','event_time':'2024-06-15T16:59:58Z',"
           "'channel_event_notification':{'channel_event':{'channel':'WHATSAPP','event_type':"
           "'WHATS_APP_QUALITY_RATING_CHANGED','additional_data':{'quality_rating':'YELLOW'}}}}",
           "CHANNEL_EVENT", "event/channel_event", "CHANNEL_EVENT:sha256:" SHA,
           "{'trigger':'CHANNEL_EVENT','time':'2024-06-15T16:59:58Z'}"),
     .channel = "WHATSAPP"},
    {OTHER("UNSUPPORTED (facts 7.11)",
           "{" ENV
           ",'accepted_time':'2024-06-15T16:00:00.010Z','event_time':'2024-06-15T16:00:00Z',"
           "'unsupported_callback':{'channel':'WHATSAPP','payload':'{\\'statuses\\':[{\\'id\\':"
           "\\'wamid.example\\',\\'status\\':\\'deleted\\'}]}','processing_mode':'DISPATCH',"
           "'id':'01J0N5SXS5AA819X9YP981068V','contact_id':'','conversation_id':''," WA_MOM "}}",
           "UNSUPPORTED", "event/unsupported", "UNSUPPORTED:sha256:" SHA,
           "{'trigger':'UNSUPPORTED','time':'2024-06-15T16:00:00Z'}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {OTHER("SMART_CONVERSATION",
           "{'smart_conversation_notification':{'contact_id':'','channel':'SMS','message_id':"
           "'m9','channel_identity':{'identity':'15551234567'},'analysis_results':{}}}",
           "SMART_CONVERSATION", "event/smart_conversation", "SMART_CONVERSATION:sha256:" SHA,
           "{'trigger':'SMART_CONVERSATION','time':null}"),
     .channel = "SMS", .identity = "+15551234567"},
    {OTHER("MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION: an event, not inbound",
           "{'accepted_time':'T','message_redaction':{'id':'m1','contact_message':{"
           "'text_message':{'text':'my card is {CREDIT_CARD}'}}," WA_MOM "}}",
           "MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION",
           "event/message_inbound_smart_conversation_redaction",
           "MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION:sha256:" SHA,
           "{'trigger':'MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION','time':'T'}"),
     .channel = "WHATSAPP", .identity = "+46701234567"},
    {OTHER("RECORD_NOTIFICATION",
           "{'record_notification':{'entity_id':'m1','record_status':'EVENT_RECORD_STORED',"
           "'channel_identity':{'channel':'RCS','identity':'+15551234567'}}}",
           "RECORD_NOTIFICATION", "event/record_notification", "RECORD_NOTIFICATION:sha256:" SHA,
           "{'trigger':'RECORD_NOTIFICATION','time':null}"),
     .channel = "RCS", .identity = "+15551234567"},
    {OTHER("other trigger of the wrong type", "{'event_time':'T','event':'x'}", "EVENT_INBOUND",
           "event/event_inbound", "EVENT_INBOUND:sha256:" SHA,
           "{'trigger':'EVENT_INBOUND','time':'T'}")},

    /* ---- unknown ---- */
    {OTHER("unknown payload key", "{'app_id':'a','accepted_time':'T','batch_status':{}}", "UNKNOWN",
           "event/unknown", "UNKNOWN:sha256:" SHA, "{'trigger':'UNKNOWN','time':'T'}")},
    {OTHER("empty object", "{}", "UNKNOWN", "event/unknown", "UNKNOWN:sha256:" SHA,
           "{'trigger':'UNKNOWN','time':null}")},
    {OTHER("exact key match, not a prefix match",
           "{'messages':{'id':'m1'},'message_delivery':{},'Message':{}}", "UNKNOWN",
           "event/unknown", "UNKNOWN:sha256:" SHA, "{'trigger':'UNKNOWN','time':null}")},
    {OTHER("Node's duplicated_identities is not the key", "{'duplicated_identities':[]}", "UNKNOWN",
           "event/unknown", "UNKNOWN:sha256:" SHA, "{'trigger':'UNKNOWN','time':null}")},

    /* ---- bad rows: not a JSON object ---- */
    BAD("empty body", ""),
    BAD("not JSON", "{oops"),
    BAD("a JSON array", "[{'message':{}}]"),
    BAD("a number", "42"),
    BAD("a string", "'message'"),
    BAD("null", "null"),
    BAD_BYTES("invalid UTF-8", "{\"message\":{\"id\":\"a\xff\"}}"),
    BAD_BYTES("overlong UTF-8", "{\"a\":\"\xc0\xaf\"}"),
    BAD_BYTES("NUL byte in the body", "{\"a\":1}\0"),
    BAD("escaped NUL", "{'a':'\\u0000'}"),
    BAD("duplicate key", "{'message':{},'message':{}}"),
    BAD("trailing garbage", "{'message':{}} x"),
    BAD("truncated", "{'message':{'id':'m1'"),
};

/* A malloc'd copy of s with every ' turned into ". */
static char *dq(const char *s)
{
    char *d = strdup(s);

    for (char *p = d; p && *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    return d;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

#define CHECK_FIELD(got, want, row, what)                                                          \
    CHECKF(same((got), (want)), "%s: %s \"%s\" != \"%s\"", (row)->name, what,                      \
           (got) ? (got) : "(null)", (want) ? (want) : "(null)")

static void run_row(const struct row *r)
{
    char *body = r->len ? NULL : dq(r->body);
    const char *b = r->len ? r->body : body;
    size_t len = r->len ? r->len : strlen(body);
    const struct sb_config *cfg = r->no_contacts ? &cfg_none : &cfg_mom;
    struct sb_event ev;
    char why[256] = "";
    enum sb_err rc = sb_event_parse(cfg, b, len, SHA, &ev, why, sizeof(why));

    CHECKF(rc == r->rc, "%s: rc %d (%s)", r->name, (int)rc, why);
    if (rc != SB_OK) {
        CHECKF(why[0] != '\0', "%s: no reason given", r->name);
        CHECKF(!ev.trigger && !ev.topic && !ev.payload && !ev.dedupe_key, "%s: not cleared",
               r->name);
        sb_event_clear(&ev);
        free(body);
        return;
    }
    CHECKF(ev.kind == r->kind, "%s: kind %d", r->name, (int)ev.kind);
    CHECK_FIELD(ev.trigger, r->trigger, r, "trigger");
    CHECK_FIELD(ev.topic, r->topic, r, "topic");
    CHECK_FIELD(ev.dedupe_key, r->key, r, "key");
    CHECK_FIELD(ev.channel, r->channel, r, "channel");
    CHECK_FIELD(ev.identity, r->identity, r, "identity");
    CHECK_FIELD(ev.message_id, r->message_id, r, "message_id");
    CHECK_FIELD(ev.status, r->status, r, "status");
    CHECK_FIELD(ev.cmd_id, r->cmd_id, r, "cmd_id");

    /* "raw" is the whole callback as received. */
    {
        json_t *root = json_loadb(b, len, 0, NULL); /* new */
        json_t *rest = json_copy(ev.payload);       /* new: shallow, to drop "raw" */
        char *want_s = dq(r->payload);
        json_error_t jerr;
        json_t *want = json_loads(want_s, 0, &jerr); /* new */

        CHECKF(json_equal(json_object_get(ev.payload, "raw"), root), "%s: raw", r->name);
        CHECKF(want != NULL, "%s: expected payload: %s", r->name, jerr.text);
        json_object_del(rest, "raw");
        if (!json_equal(rest, want)) {
            char *got = json_dumps(rest, JSON_COMPACT);
            CHECKF(false, "%s: payload\n  got  %s\n  want %s", r->name, got, want_s);
            free(got);
        } else {
            CHECK(true);
        }
        json_decref(want);
        free(want_s);
        json_decref(rest);
        json_decref(root);
    }
    sb_event_clear(&ev);
    CHECK(ev.trigger == NULL && ev.payload == NULL);
    free(body);
}

/* Topic levels cut at LEVEL_MAX bytes on a character boundary; "from" stays whole. */
static void test_long_identity(void)
{
    char identity[401];
    char body[600];
    struct sb_event ev;
    char why[128];
    const char *level;

    for (size_t i = 0; i < 200; i++) {
        identity[2 * i] = '\xc3';
        identity[2 * i + 1] = '\xa9'; /* U+00E9, two bytes */
    }
    identity[400] = '\0';
    snprintf(body, sizeof(body),
             "{\"message\":{\"id\":\"m1\",\"channel_identity\":{\"channel\":\"MESSENGER\","
             "\"identity\":\"x%s\"}}}",
             identity);
    CHECK(sb_event_parse(&cfg_mom, body, strlen(body), SHA, &ev, why, sizeof(why)) == SB_OK);
    level = ev.topic ? strrchr(ev.topic, '/') + 1 : "";
    CHECKF(strlen(level) == 127, "level of %zu bytes", strlen(level)); /* 'x' + 63 x 2 bytes */
    CHECK(level[0] == 'x' && (unsigned char)level[126] == 0xA9);
    CHECK(ev.identity && strlen(ev.identity) == 401);
    CHECK_STR(json_string_value(json_object_get(ev.payload, "from")), ev.identity);
    sb_event_clear(&ev);
}

/* A dedupe key past its limit falls back to the body hash. */
static void test_long_key(void)
{
    char id[1001];
    char body[1200];
    struct sb_event ev;

    memset(id, 'a', 1000);
    id[1000] = '\0';
    snprintf(body, sizeof(body), "{\"message\":{\"id\":\"%s\"}}", id);
    CHECK(sb_event_parse(&cfg_mom, body, strlen(body), SHA, &ev, NULL, 0) == SB_OK);
    CHECK_STR(ev.dedupe_key, "MESSAGE_INBOUND:sha256:" SHA);
    CHECK(same(json_string_value(json_object_get(ev.payload, "message_id")), id));
    sb_event_clear(&ev);
}

/* Our choice postbacks, as sb_command_postback() writes them, come back as choices. */
static void test_postback_round_trip(void)
{
    static const char *const options[] = {"Acknowledge", "Snooze 10 min", "a|b", ""};

    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        char *pb = sb_command_postback("freezer-alarm-42", i, options[i]);
        json_t *root = json_pack("{s:{s:s, s:{s:{s:s, s:s}}, s:{s:s, s:s}}}", "message", "id", "m1",
                                 "contact_message", "choice_response_message", "message_id", "t1",
                                 "postback_data", pb ? pb : "", "channel_identity", "channel",
                                 "WHATSAPP", "identity", "15551234567");
        char *body = root ? json_dumps(root, JSON_COMPACT) : NULL;
        struct sb_event ev;

        CHECK(body != NULL);
        if (body && sb_event_parse(&cfg_mom, body, strlen(body), SHA, &ev, NULL, 0) == SB_OK) {
            const json_t *choice;
            choice = json_object_get(ev.payload, "choice");
            CHECK_STR(json_string_value(json_object_get(ev.payload, "kind")), "choice");
            CHECK_STR(json_string_value(json_object_get(ev.payload, "text")), options[i]);
            CHECK_STR(json_string_value(json_object_get(choice, "postback")), pb);
            CHECK((size_t)json_integer_value(json_object_get(choice, "index")) == i);
            CHECK_STR(ev.cmd_id, "freezer-alarm-42");
            CHECK_STR(ev.message_id, "t1");
            CHECK_STR(ev.topic, "inbound/whatsapp/15551234567");
            sb_event_clear(&ev);
        } else {
            CHECKF(false, "option %zu not parsed", i);
        }
        free(body);
        json_decref(root);
        free(pb);
    }
}

static void test_api_edges(void)
{
    struct sb_event ev;
    char why[64];

    memset(&ev, 0, sizeof(ev));
    sb_event_clear(&ev);
    sb_event_clear(NULL);
    CHECK(sb_event_parse(&cfg_mom, "{}", 2, NULL, &ev, why, sizeof(why)) == SB_E_BUG);
    CHECK(sb_event_parse(&cfg_mom, "{}", 2, SHA, NULL, why, sizeof(why)) == SB_E_BUG);
    CHECK(sb_event_parse(&cfg_mom, NULL, 0, SHA, &ev, why, sizeof(why)) == SB_E_INVAL);
    CHECK(sb_event_parse(&cfg_mom, "[]", 2, SHA, &ev, NULL, 0) == SB_E_INVAL);
    /* The body need not be NUL-terminated: only len bytes are read. */
    CHECK(sb_event_parse(&cfg_mom, "{}xyz", 2, SHA, &ev, why, sizeof(why)) == SB_OK);
    CHECK_STR(ev.trigger, "UNKNOWN");
    sb_event_clear(&ev);
    /* Without a config: no aliases, digits in the topic. */
    {
        const char *b =
            "{\"message\":{\"id\":\"m1\",\"channel_identity\":{\"channel\":\"WHATSAPP\","
            "\"identity\":\"46701234567\"}}}";
        CHECK(sb_event_parse(NULL, b, strlen(b), SHA, &ev, why, sizeof(why)) == SB_OK);
        CHECK_STR(ev.topic, "inbound/whatsapp/46701234567");
        CHECK(json_object_get(ev.payload, "alias") == NULL);
        sb_event_clear(&ev);
    }
    /* A short why buffer is cut, not overrun. */
    {
        char tiny[8];
        CHECK(sb_event_parse(&cfg_mom, "{oops", 5, SHA, &ev, tiny, sizeof(tiny)) == SB_E_INVAL);
        CHECK(strlen(tiny) == 7);
    }
}

/* jansson's allocator, failing from the n-th call on: every allocation of the parse and of the
 * normalised payload fails once, and nothing crashes or leaks (run under ASan). */
static long alloc_left;

static void *failing_malloc(size_t n)
{
    return alloc_left-- > 0 ? malloc(n) : NULL;
}

static void test_nomem(void)
{
    static const char *const bodies[] = {
        MSG("{'choice_response_message':{'message_id':'t1','postback_data':'a1|0|Yes'}}"),
        MSGX("{'choice_response_message':{'message_id':'t1','postback_data':'x'}}",
             "'{\\'id\\':\\'a1\\'}'"),
        MSG("{'media_message':{'url':'u','thumbnail_url':'t','filename_override':'f'}}"),
        MSG("{'location_message':{'title':'W','coordinates':{'latitude':1.5,'longitude':2}}}"),
        MSG("{'fallback_message':{'raw_message':'r','reason':{'code':'C'}},'reply_to':"
            "{'message_id':'q'}}"),
        DLRX("FAILED", "'{\\'id\\':\\'a1\\',\\'metadata\\':\\'m\\'}'", ",'reason':{'code':'C'}"),
        ("{'opt_out_notification':{'request_id':'r','status':'S','channel':'SMS','identity':"
         "'15551234567'}}"),
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char *body = dq(bodies[i]);
        bool done = false;

        for (long n = 0; n < 10000 && !done && body; n++) {
            struct sb_event ev;
            char why[128];
            enum sb_err rc;

            alloc_left = n;
            json_set_alloc_funcs(failing_malloc, free);
            rc = sb_event_parse(&cfg_mom, body, strlen(body), SHA, &ev, why, sizeof(why));
            json_set_alloc_funcs(malloc, free);
            if (rc == SB_OK) {
                done = true;
                CHECKF(ev.payload && ev.dedupe_key && ev.topic, "body %zu", i);
            } else {
                /* a failed load is reported as bad JSON by jansson: either is fine here */
                CHECKF((rc == SB_E_NOMEM || rc == SB_E_INVAL) && !ev.payload && !ev.topic,
                       "body %zu, allocation %ld: rc %d", i, n, (int)rc);
            }
            sb_event_clear(&ev);
        }
        CHECKF(done, "body %zu never parsed", i);
        free(body);
    }
}

static void test_rank(void)
{
    static const struct {
        const char *status;
        int rank;
    } ranks[] = {
        {"QUEUED_ON_CHANNEL", 1}, {"DELIVERED", 2}, {"READ", 3},      {"FAILED", 3},
        {"SWITCHING_CHANNEL", 3}, {"QUEUED", 0},    {"delivered", 0}, {"", 0},
        {"UNKNOWN_STATUS", 0},    {NULL, 0},
    };

    for (size_t i = 0; i < sizeof(ranks) / sizeof(ranks[0]); i++) {
        CHECKF(sb_delivery_rank(ranks[i].status) == ranks[i].rank, "rank of %s",
               ranks[i].status ? ranks[i].status : "(null)");
    }
    /* "Never backwards": a late DELIVERED after READ ranks below it. */
    CHECK(sb_delivery_rank("DELIVERED") < sb_delivery_rank("READ"));
}

int main(void)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        run_row(&rows[i]);
    }
    test_long_identity();
    test_long_key();
    test_postback_round_trip();
    test_api_edges();
    test_nomem();
    test_rank();
    return check_report();
}
