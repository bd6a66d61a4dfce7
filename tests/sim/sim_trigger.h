/* Sinch's webhook trigger names (fact 6.3) and the payload key each one's callbacks carry
 * (fact 7.2). A constant table, so any thread may use it. */
#ifndef SIM_TRIGGER_H
#define SIM_TRIGGER_H

#include <stdbool.h>
#include <stdint.h>

enum sim_trigger {
    SIM_TRIGGER_MESSAGE_INBOUND,
    SIM_TRIGGER_MESSAGE_DELIVERY,
    SIM_TRIGGER_MESSAGE_SUBMIT,
    SIM_TRIGGER_EVENT_INBOUND,
    SIM_TRIGGER_EVENT_DELIVERY,
    SIM_TRIGGER_CONVERSATION_START,
    SIM_TRIGGER_CONVERSATION_STOP,
    SIM_TRIGGER_CONVERSATION_DELETE,
    SIM_TRIGGER_CONTACT_CREATE,
    SIM_TRIGGER_CONTACT_DELETE,
    SIM_TRIGGER_CONTACT_MERGE,
    SIM_TRIGGER_CONTACT_UPDATE,
    SIM_TRIGGER_CONTACT_IDENTITIES_DUPLICATION,
    SIM_TRIGGER_CAPABILITY,
    SIM_TRIGGER_OPT_IN,
    SIM_TRIGGER_OPT_OUT,
    SIM_TRIGGER_CHANNEL_EVENT,
    SIM_TRIGGER_UNSUPPORTED,
    SIM_TRIGGER_SMART_CONVERSATION,
    SIM_TRIGGER_MESSAGE_INBOUND_SMART_CONVERSATION_REDACTION,
    SIM_TRIGGER_RECORD_NOTIFICATION,
    SIM_TRIGGER_COUNT,
    SIM_TRIGGER_UNKNOWN = SIM_TRIGGER_COUNT, /* a raw body with no known payload key */
};

#define SIM_TRIGGER_ALL    ((1u << SIM_TRIGGER_COUNT) - 1u) /* a mask with every trigger */
#define SIM_TRIGGER_BIT(t) (1u << (unsigned)(t))

/* The trigger called `name`; false for unknown names and for UNSPECIFIED_TRIGGER, which Sinch
 * documents as "never use". */
bool sim_trigger_parse(const char *name, enum sim_trigger *out);

/* "MESSAGE_DELIVERY"; "UNKNOWN" for SIM_TRIGGER_UNKNOWN. */
const char *sim_trigger_name(enum sim_trigger t);

/* The top-level key of its callbacks: "message_delivery_report"; NULL for SIM_TRIGGER_UNKNOWN. */
const char *sim_trigger_key(enum sim_trigger t);

/* The trigger whose payload key `key` is (exact match, fact 7.2). */
bool sim_trigger_from_key(const char *key, enum sim_trigger *out);

#endif
