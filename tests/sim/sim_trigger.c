/* The trigger table of fact 6.3: name and payload key, in enum order. */
#include "sim_trigger.h"

#include <string.h>

static const struct {
    const char *name;
    const char *key;
} triggers[SIM_TRIGGER_COUNT] = {
    {"MESSAGE_INBOUND", "message"},
    {"MESSAGE_DELIVERY", "message_delivery_report"},
    {"MESSAGE_SUBMIT", "message_submit_notification"},
    {"EVENT_INBOUND", "event"},
    {"EVENT_DELIVERY", "event_delivery_report"},
    {"CONVERSATION_START", "conversation_start_notification"},
    {"CONVERSATION_STOP", "conversation_stop_notification"},
    {"CONVERSATION_DELETE", "conversation_delete_notification"},
    {"CONTACT_CREATE", "contact_create_notification"},
    {"CONTACT_DELETE", "contact_delete_notification"},
    {"CONTACT_MERGE", "contact_merge_notification"},
    {"CONTACT_UPDATE", "contact_update_notification"},
    {"CONTACT_IDENTITIES_DUPLICATION", "duplicated_contact_identities_notification"},
    {"CAPABILITY", "capability_notification"},
    {"OPT_IN", "opt_in_notification"},
    {"OPT_OUT", "opt_out_notification"},
    {"CHANNEL_EVENT", "channel_event_notification"},
    {"UNSUPPORTED", "unsupported_callback"},
    {"SMART_CONVERSATION", "smart_conversation_notification"},
    {"MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION", "message_redaction"},
    {"RECORD_NOTIFICATION", "record_notification"},
};

bool sim_trigger_parse(const char *name, enum sim_trigger *out)
{
    for (int i = 0; i < SIM_TRIGGER_COUNT; i++) {
        if (strcmp(name, triggers[i].name) == 0) {
            *out = (enum sim_trigger)i;
            return true;
        }
    }
    return false;
}

const char *sim_trigger_name(enum sim_trigger t)
{
    return t < SIM_TRIGGER_COUNT ? triggers[t].name : "UNKNOWN";
}

const char *sim_trigger_key(enum sim_trigger t)
{
    return t < SIM_TRIGGER_COUNT ? triggers[t].key : NULL;
}

bool sim_trigger_from_key(const char *key, enum sim_trigger *out)
{
    for (int i = 0; i < SIM_TRIGGER_COUNT; i++) {
        if (strcmp(key, triggers[i].key) == 0) {
            *out = (enum sim_trigger)i;
            return true;
        }
    }
    return false;
}
