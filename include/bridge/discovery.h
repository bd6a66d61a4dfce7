/* Home Assistant MQTT discovery (BRIDGE_HA_DISCOVERY): the retained config messages that give
 * Home Assistant one device "Sinch bridge" with, per contact alias, a notify entity (its command
 * topic is P/send/<alias>, so notify.send_message sends a text) and two event entities (inbound
 * messages, delivery reports), plus sensors for the outbox depth, the last error and the
 * messages sent today; every entity is available while P/bridge/state says "online".
 * Topics: <BRIDGE_HA_PREFIX>/<component>/sinch_bridge_<prefix>/<object>/config (PRODUCT.md).
 * Pure: builds the messages, the caller publishes them. Thread: any. */
#ifndef SB_BRIDGE_DISCOVERY_H
#define SB_BRIDGE_DISCOVERY_H

#include <stddef.h>

#include "bridge/config.h"
#include "bridge/err.h"

struct sb_discovery_entry {
    char *topic;
    char *payload; /* JSON */
};

struct sb_discovery {
    struct sb_discovery_entry *v;
    size_t n;
};

/* Builds every config message for `cfg` into *out (cleared first). */
enum sb_err sb_discovery_build(const struct sb_config *cfg, struct sb_discovery *out) SB_MUST_CHECK;

/* Whether `d` has a message on `topic`. */
bool sb_discovery_has(const struct sb_discovery *d, const char *topic);

/* Frees the messages; `d` is empty afterwards. */
void sb_discovery_clear(struct sb_discovery *d);

#endif
