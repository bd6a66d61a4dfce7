/* The MQTT adapter: paho MQTTAsync, MQTT 5 or 3.1.1, tcp/TLS/websockets, a persistent session
 * (clean start off, 7-day session expiry) under a stable client id, the will and the retained
 * P/bridge/state, automatic reconnect with resubscription, shared subscriptions for commands,
 * plain ones for the control plane and Home Assistant's status.
 *
 * Threads: paho runs its own. Handlers are called on paho's threads; `message` is called on its
 * receive thread BEFORE the broker gets its PUBACK (paho sends it when the callback returns), so
 * a handler that stores the command there makes the broker keep it until it is on disk. */
#ifndef SB_ADAPTERS_MQTT_H
#define SB_ADAPTERS_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/config.h"
#include "bridge/err.h"
#include "bridge/loop.h"

struct sb_mqtt;

/* An arrived message; every pointer is borrowed for the duration of the handler call. */
struct sb_mqtt_message {
    const char *topic; /* NUL-terminated */
    const void *payload;
    size_t len;
    const char *response_topic; /* MQTT 5 Response Topic, or NULL */
    const void *correlation;    /* MQTT 5 Correlation Data, or NULL */
    size_t correlation_len;
};

struct sb_mqtt_handlers {
    /* Thread: paho's receive thread. Return only once the message is safe (stored). */
    void (*message)(void *arg, const struct sb_mqtt_message *msg);
    /* Thread: paho's receive thread. A message on P/bridge/request/<action> or, with
     * BRIDGE_HA_DISCOVERY, on <BRIDGE_HA_PREFIX>/status: not a command, nothing to store; copy
     * what is needed and return. May be NULL. */
    void (*control)(void *arg, const struct sb_mqtt_message *msg);
    /* Thread: paho's. The session is up (subscribed) or lost. */
    void (*connection)(void *arg, bool up);
    /* Thread: paho's, or the loop's (a publish whose client had to be replaced fails there).
     * The broker acknowledged (ok) or refused the publish `tag`; exactly once per publish that
     * sb_mqtt_publish() accepted, except at sb_mqtt_free(). */
    void (*published)(void *arg, uint64_t tag, bool ok);
};

/* `cfg` and `loop` are borrowed and must outlive the adapter; `info` is the retained
 * P/bridge/info payload (copied). Does not connect yet. Thread: loop. */
enum sb_err sb_mqtt_new(const struct sb_config *cfg, struct sb_loop *loop,
                        const struct sb_mqtt_handlers *handlers, void *arg, const char *info,
                        struct sb_mqtt **out) SB_MUST_CHECK;

/* Connects, retrying every few seconds until the broker answers; afterwards paho reconnects by
 * itself. Thread: loop. */
enum sb_err sb_mqtt_start(struct sb_mqtt *m) SB_MUST_CHECK;

/* Publishes at QoS 1. `correlation` (MQTT 5 only, may be NULL) is set as Correlation Data.
 * `tag` comes back through handlers->published; tag 0 means "no callback wanted".
 * SB_E_MQTT when not connected (nothing is buffered: the caller keeps and retries). Thread: any. */
enum sb_err sb_mqtt_publish(struct sb_mqtt *m, const char *topic, const void *payload, size_t len,
                            bool retain, const void *correlation, size_t correlation_len,
                            uint64_t tag) SB_MUST_CHECK;

/* Replaces the retained P/bridge/info payload (copied) and publishes it now when connected,
 * else at the next connection. Thread: any. */
enum sb_err sb_mqtt_set_info(struct sb_mqtt *m, const char *info) SB_MUST_CHECK;

/* Whether the session is up. Thread: any. */
bool sb_mqtt_connected(const struct sb_mqtt *m);

/* Clean stop: unsubscribes nothing (the session keeps queueing commands for us), publishes the
 * retained "offline", waits up to timeout_ms for in-flight publishes, disconnects.
 * Thread: loop. */
void sb_mqtt_stop(struct sb_mqtt *m, int timeout_ms);

/* For --check-config: connects once with a throwaway clean session (client id + "-check", so a
 * running bridge's session is not touched), then disconnects. Blocking, at most timeout_ms.
 * On failure writes the reason into why (never the password). Thread: any, no loop needed. */
enum sb_err sb_mqtt_check(const struct sb_config *cfg, int timeout_ms, char *why,
                          size_t why_len) SB_MUST_CHECK;

/* Accepts NULL. After sb_mqtt_stop(). Thread: loop. */
void sb_mqtt_free(struct sb_mqtt *m);

#endif
