/* The bridge's health, as one JSON object: published on P/bridge/health every
 * BRIDGE_HEALTH_INTERVAL seconds and answered to the health_check request (PRODUCT.md "Shapes":
 * uptime_s, mqtt, sinch, store, counters). Pure: the caller gathers the figures. Thread: any. */
#ifndef SB_BRIDGE_HEALTH_H
#define SB_BRIDGE_HEALTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "bridge/outbox.h"

struct sb_health {
    int64_t uptime_s;
    bool mqtt_up;
    bool oauth;             /* SINCH_AUTH=oauth: the token state is reported */
    bool token_valid;       /* a token is cached and not about to expire */
    long sinch_last_status; /* the last API answer's HTTP status, 0 before any */
    int64_t outbox_depth;   /* -1 when the store did not answer */
    int64_t inbox_depth;    /* -1 likewise */
    int64_t sent_today;     /* -1 likewise */
    struct sb_outbox_stats outbox;
    json_t *webhooks; /* borrowed: webhooks by result */
};

/* A new object, or NULL when out of memory. */
json_t *sb_health_json(const struct sb_health *h);

#endif
