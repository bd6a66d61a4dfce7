/* Inbound: Sinch's webhooks to MQTT. A webhook is verified (signature, time window), parsed and
 * normalised, deduplicated and stored in one transaction, and only then answered 200; the
 * inbox is then published at QoS 1, in the order it was stored, each row deleted when the broker
 * acknowledges it. With the broker away the bridge keeps answering 200 and storing.
 * Thread: loop, for every function. */
#ifndef SB_BRIDGE_INBOUND_H
#define SB_BRIDGE_INBOUND_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "adapters/store.h"
#include "adapters/webhook.h"
#include "bridge/config.h"
#include "bridge/err.h"
#include "bridge/loop.h"

struct sb_inbound;

/* Publishes at QoS 1; the broker's answer comes back through sb_inbound_on_published() with
 * the same tag. SB_E_MQTT when not connected. */
typedef enum sb_err (*sb_inbound_publish_fn)(void *ctx, const char *topic, const char *payload,
                                             size_t len, uint64_t tag);

enum sb_err sb_inbound_new(const struct sb_config *cfg, struct sb_loop *loop,
                           struct sb_store *store, sb_inbound_publish_fn publish, void *ctx,
                           struct sb_inbound **out) SB_MUST_CHECK;
void sb_inbound_free(struct sb_inbound *in);

/* Handles POST BRIDGE_WEBHOOK_PATH: fills in the answer (200, 400, 401, 503). */
void sb_inbound_webhook(struct sb_inbound *in, const struct sb_webhook_request *rq,
                        struct sb_http_answer *ans);
void sb_inbound_on_published(struct sb_inbound *in, uint64_t tag, bool ok);
void sb_inbound_on_mqtt(struct sb_inbound *in, bool up);
/* Publishes what an earlier run left in the inbox. */
void sb_inbound_start(struct sb_inbound *in);

/* Writes the webhook counters in Prometheus text format. */
void sb_inbound_metrics(const struct sb_inbound *in, FILE *out);
/* The webhook counters summed over triggers, {"stored": n, "duplicate": n, ...}, for
 * P/bridge/health; NULL when out of memory. */
json_t *sb_inbound_results_json(const struct sb_inbound *in);
/* Whether the last store write of a webhook failed (for /readyz). */
bool sb_inbound_store_failing(const struct sb_inbound *in);

#endif
