/* The webhook registry (fact 6): the app's registrations made through the webhook management
 * API, plus the one --webhook-url target that receives every trigger. Create and update check a
 * body the way Sinch does (at most 5 per app, a target once per app, known triggers) and, the
 * simulator's own rule, refuse any target that is not on loopback. The loop changes it; the
 * delivery thread takes snapshots of the targets of a trigger. Thread: any (one mutex inside). */
#ifndef SIM_WEBHOOKS_H
#define SIM_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "sim_ids.h"
#include "sim_trigger.h"

#define SIM_WEBHOOKS_MAX    5   /* per app (fact 6.2) */
#define SIM_WEBHOOK_URL_MAX 742 /* characters of a target (fact 6.2) */
#define SIM_WEBHOOK_ID_MAX  (SIM_ULID_LEN + 1)

/* A snapshot of one place callbacks go: copies, valid after the registry changes. */
struct sim_target {
    char *url;                           /* owned */
    char *secret;                        /* owned; NULL: callbacks to it are unsigned */
    char webhook_id[SIM_WEBHOOK_ID_MAX]; /* "" for --webhook-url */
};

/* Frees what `t` owns and zeroes it. */
void sim_target_release(struct sim_target *t);

/* Why a create or update was refused: an HTTP status, the field at fault ("" for none) and a
 * sentence. */
struct sim_webhook_error {
    int status;
    char field[64];
    char why[256];
};

struct sim_webhooks;

/* Returns a new registry, or NULL when out of memory. `url` (the --webhook-url, NULL for none)
 * and `secret` (NULL for none) are copied; the caller has checked the url. */
struct sim_webhooks *sim_webhooks_new(const char *url, const char *secret);
void sim_webhooks_free(struct sim_webhooks *w); /* accepts NULL */

/* POST .../webhooks: checks `body` (borrowed) against the app `app_id` and stores it under
 * `id`. Returns a new copy of the webhook as answered, or NULL with `err` filled in. */
json_t *sim_webhooks_create(struct sim_webhooks *w, json_t *body, const char *app_id,
                            const char *id, struct sim_webhook_error *err);

/* PATCH .../webhooks/{id}: changes the fields `body` (borrowed) gives; with a non-empty `mask`
 * (the update_mask field names, comma-separated) only the fields it names. Returns a new copy
 * of the updated webhook, or NULL with `err` filled in (404 for an unknown id). */
json_t *sim_webhooks_update(struct sim_webhooks *w, const char *id, json_t *body, const char *mask,
                            const char *app_id, struct sim_webhook_error *err);

/* Returns a new copy of webhook `id`, or NULL when there is none. */
json_t *sim_webhooks_get(struct sim_webhooks *w, const char *id);

/* Forgets webhook `id`; false when there is none. */
bool sim_webhooks_delete(struct sim_webhooks *w, const char *id);

/* Returns a new array of copies of the registrations, oldest first. */
json_t *sim_webhooks_list(struct sim_webhooks *w);

/* Returns a new {"webhooks": [...], "webhook_url": url or null, "webhook_url_signed": bool}
 * for GET /_sim/webhooks. */
json_t *sim_webhooks_control_json(struct sim_webhooks *w);

/* True when some target would get callbacks of trigger `t` now. Lock-free: the hot path of
 * messages:send asks this. */
bool sim_webhooks_subscribed(const struct sim_webhooks *w, enum sim_trigger t);

/* Fills out[0..] with snapshots of the targets of trigger `t` (every one for
 * SIM_TRIGGER_UNKNOWN is only --webhook-url) and returns how many; out must hold
 * SIM_WEBHOOKS_MAX + 1. The caller releases each with sim_target_release(). */
size_t sim_webhooks_targets(struct sim_webhooks *w, enum sim_trigger t, struct sim_target *out);

/* True when `url` is http:// or https:// with a host the simulator may call: 127.0.0.0/8,
 * localhost or ::1 (written as an address, never a name that would need a resolver). */
bool sim_url_is_loopback(const char *url);

#endif
