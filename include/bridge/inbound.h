/* Inbound: Sinch's webhooks to MQTT. A webhook is verified (signature, time window), parsed and
 * normalised, and staged in memory with its request's answer deferred; at the end of the loop
 * turn (sb_inbound_flush()) the turn's events are deduplicated and stored in ONE transaction,
 * only then answered 200 (503 when the commit failed: Sinch delivers them again), and then
 * published at QoS 1 straight from memory, in the order they were stored, each inbox row
 * deleted when the broker acknowledges it. The inbox is read back from the store only at start
 * and when the in-memory window is full (a broker outage, a broker slower than the webhooks).
 * With the broker away the bridge keeps answering 200 and storing.
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

/* Handles POST BRIDGE_WEBHOOK_PATH: answers 400, 401 or 503 at once; a verified event is
 * staged and answered later (ans->status SB_HTTP_PENDING: it takes rq->pending and answers it
 * with sb_webhook_answer() after the commit). A request without a handle is answered 503. */
void sb_inbound_webhook(struct sb_inbound *in, const struct sb_webhook_request *rq,
                        struct sb_http_answer *ans);
/* Commits the staged events in one transaction, answers their requests (200, or 503 for all
 * when the commit failed: none of them is kept), then publishes the stored ones. Called at
 * the end of every loop turn, and when a turn stages more events than one commit takes.
 * Accepts NULL (a turn that ends before the module exists). */
void sb_inbound_flush(struct sb_inbound *in);
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
