/* The control plane (Zigbee2MQTT style): a request on P/bridge/request/<action> with an
 * optional JSON body is answered on P/bridge/response/<action> with
 * {"status": "ok"|"error", "data": {...}, "error": "...", "transaction": <echoed>}.
 * Actions: health_check, resend_discovery, reload (through the ops below) and history (from the
 * store: the last messages to and from a contact, newest first, each with its latest status).
 * Thread: loop, for every function. */
#ifndef SB_BRIDGE_CONTROL_H
#define SB_BRIDGE_CONTROL_H

#include <jansson.h>
#include <stddef.h>

#include "adapters/store.h"
#include "bridge/config.h"
#include "bridge/err.h"

/* What the control plane asks of the rest of the bridge. */
struct sb_control_ops {
    /* health_check: the P/bridge/health object (new reference), or NULL. */
    json_t *(*health)(void *ctx);
    /* resend_discovery: publishes Home Assistant discovery again. */
    enum sb_err (*resend_discovery)(void *ctx, char *why, size_t why_len);
    /* reload: what SIGHUP does; the data to answer with, or NULL with the reason in why. */
    json_t *(*reload)(void *ctx, char *why, size_t why_len);
    /* Publishes the answer at QoS 1 (not retained). */
    enum sb_err (*publish)(void *ctx, const char *topic, const char *payload, size_t len);
    void *ctx;
};

struct sb_control;

/* cfg and store are borrowed and must outlive it; ops is copied. */
enum sb_err sb_control_new(const struct sb_config *cfg, struct sb_store *store,
                           const struct sb_control_ops *ops, struct sb_control **out) SB_MUST_CHECK;
/* Accepts NULL. */
void sb_control_free(struct sb_control *c);

/* A request for `action` (the last topic level) with `payload` (may be empty). */
void sb_control_request(struct sb_control *c, const char *action, const char *payload, size_t len);

#endif
