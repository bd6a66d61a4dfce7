/* floor_mqtt: the paho side that floor_out and floor_in share. One MQTT 5 client (paho
 * MQTTAsync, clean start, as the bridge connects by default but without its persistent session)
 * to a broker on 127.0.0.1, TCP_NODELAY on its socket as the bridge sets it, and QoS 1 publishes
 * through a window of our own: paho sends a queued publish only when a new command wakes its send
 * thread, so more than its in-flight window handed over at once would drain one window a second.
 * Plus the one text lookup both programs need instead of a JSON parser. Part of the floor
 * benchmarks (tests/bench/README.md): a yardstick, not a product. */
#ifndef SB_BENCH_FLOOR_MQTT_H
#define SB_BENCH_FLOOR_MQTT_H

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct floor_mqtt {
    MQTTAsync client;
    int port; /* the broker's, on 127.0.0.1 */
    long window;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long in_flight; /* QoS 1 publishes handed to paho, not yet acknowledged {lock} */
    long acked;     /* {lock} */
    long failed;    /* publishes paho gave up on {lock} */
    bool call_done; /* the connect, subscribe or disconnect being waited for ended {lock} */
    int call_rc;    /* and how {lock} */
};

/* Connects client_id to 127.0.0.1:port (MQTT 5, clean start) with at most `window` QoS 1
 * publishes in flight; on_message (may be NULL for a client that subscribes to nothing) gets
 * `context`. A lost connection ends the process: a yardstick has no reconnection. Returns 0, or
 * -1 with the reason on stderr. */
int floor_mqtt_connect(struct floor_mqtt *m, int port, const char *client_id, long window,
                       MQTTAsync_messageArrived *on_message, void *context);

/* Subscribes to filter at QoS 1 and waits for the SUBACK. Returns 0, or -1. */
int floor_mqtt_subscribe(struct floor_mqtt *m, const char *filter);

/* Publishes payload on topic at QoS 1, waiting first while the window is full (paho copies both).
 * Returns 0, or -1 when paho refuses it. Any thread. */
int floor_mqtt_publish(struct floor_mqtt *m, const char *topic, const void *payload, size_t len);

/* Waits up to `seconds` for the publishes in flight, disconnects and frees the client. */
void floor_mqtt_close(struct floor_mqtt *m, int seconds);

/* The value of the first "key":"value" in text[0..len): where it starts and how long it is, up
 * to the next '"' that no backslash escapes. The raw JSON string content, escapes kept, so it can
 * be written into another JSON string as it is. Not a parser: the key must be written exactly so,
 * without blanks, as the bridge's peers write it. Returns false when there is none. */
bool floor_json_field(const char *text, size_t len, const char *key, const char **value,
                      size_t *value_len);

#endif
