/* The attempt log: the recorder's ring (sim_record.c) behind a mutex. Bodies are shared blobs,
 * so an entry costs its fixed part and a copy of the target URL. */
#include "sim_cblog.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_ENTRIES 256
#define ERROR_MAX       128

struct entry {
    uint64_t seq;
    int64_t time_ms;
    int64_t duration_ms;
    char event_id[SIM_ULID_LEN + 1];
    char webhook_id[SIM_ULID_LEN + 1];
    char *target; /* owned */
    enum sim_trigger trigger;
    unsigned attempt;
    int status;
    bool final;
    const char *signature; /* static */
    char nonce[SIM_NONCE_MAX];
    char timestamp[SIM_TS_MAX];
    char error[ERROR_MAX];
    struct sim_blob *body; /* a reference */
};

struct sim_cblog {
    pthread_mutex_t lock;
    struct entry *ring; /* {lock} */
    size_t cap;         /* {lock} */
    size_t max;
    size_t head;       /* {lock} index of the oldest */
    size_t count;      /* {lock} */
    uint64_t next_seq; /* {lock} */
};

struct sim_cblog *sim_cblog_new(size_t max)
{
    struct sim_cblog *log = calloc(1, sizeof(*log));
    if (!log) {
        return NULL;
    }
    pthread_mutex_init(&log->lock, NULL);
    log->max = max > 0 ? max : 1;
    log->next_seq = 1;
    return log;
}

static void entry_release(struct entry *e)
{
    free(e->target);
    sim_blob_unref(e->body);
    e->target = NULL;
    e->body = NULL;
}

static void clear_locked(struct sim_cblog *log)
{
    for (size_t i = 0; i < log->count; i++) {
        entry_release(&log->ring[(log->head + i) % log->cap]);
    }
    log->head = 0;
    log->count = 0;
}

void sim_cblog_clear(struct sim_cblog *log)
{
    pthread_mutex_lock(&log->lock);
    clear_locked(log);
    pthread_mutex_unlock(&log->lock);
}

void sim_cblog_free(struct sim_cblog *log)
{
    if (log) {
        clear_locked(log);
        free(log->ring);
        pthread_mutex_destroy(&log->lock);
        free(log);
    }
}

/* A free slot at the tail, making room as the recorder does; NULL when out of memory. */
static struct entry *slot_locked(struct sim_cblog *log)
{
    if (log->count == log->cap && log->cap < log->max) {
        /* Still growing, so the ring has never wrapped: head is 0 and realloc keeps order. */
        size_t cap = log->cap ? log->cap * 2 : INITIAL_ENTRIES;
        cap = cap > log->max ? log->max : cap;
        struct entry *ring = realloc(log->ring, cap * sizeof(*ring));
        if (!ring) {
            return NULL;
        }
        log->ring = ring;
        log->cap = cap;
    }
    if (log->count == log->cap) {
        entry_release(&log->ring[log->head]);
        log->head = (log->head + 1) % log->cap;
        log->count--;
    }
    return &log->ring[(log->head + log->count) % log->cap];
}

void sim_cblog_add(struct sim_cblog *log, const struct sim_cb_attempt *a)
{
    char *target = strdup(a->target);
    if (!target) {
        return;
    }
    pthread_mutex_lock(&log->lock);
    struct entry *e = slot_locked(log);
    if (!e) {
        pthread_mutex_unlock(&log->lock);
        free(target);
        return;
    }
    memset(e, 0, sizeof(*e));
    e->seq = log->next_seq++;
    e->time_ms = a->time_ms;
    e->duration_ms = a->duration_ms;
    snprintf(e->event_id, sizeof(e->event_id), "%s", a->event_id);
    snprintf(e->webhook_id, sizeof(e->webhook_id), "%s", a->webhook_id);
    e->target = target;
    e->trigger = a->trigger;
    e->attempt = a->attempt;
    e->status = a->status;
    e->final = a->final;
    e->signature = a->signature;
    snprintf(e->nonce, sizeof(e->nonce), "%s", a->nonce);
    snprintf(e->timestamp, sizeof(e->timestamp), "%s", a->timestamp);
    snprintf(e->error, sizeof(e->error), "%s", a->error ? a->error : "");
    e->body = sim_blob_ref(a->body);
    log->count++;
    pthread_mutex_unlock(&log->lock);
}

static json_t *body_json(const struct sim_blob *b)
{
    json_t *val = json_loadb(sim_blob_data(b), sim_blob_len(b), JSON_DECODE_ANY, NULL);
    if (!val) {
        val = json_stringn(sim_blob_data(b), sim_blob_len(b)); /* NULL when not UTF-8 */
    }
    return val ? val : json_null();
}

static json_t *entry_json(const struct entry *e)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:b, s:s}", "seq",
                          (json_int_t)e->seq, "event_id", e->event_id, "target", e->target,
                          "webhook_id", e->webhook_id, "trigger", sim_trigger_name(e->trigger),
                          "attempt", (int)e->attempt, "status", e->status, "time_ms",
                          (json_int_t)e->time_ms, "final", e->final, "signature", e->signature);
    if (o && e->nonce[0]) {
        json_object_set_new(o, "nonce", json_string(e->nonce));
        json_object_set_new(o, "timestamp", json_string(e->timestamp));
    }
    if (o && e->error[0]) {
        json_object_set_new(o, "error", json_string(e->error));
    }
    if (o) {
        json_object_set_new(o, "body", body_json(e->body));
    }
    return o;
}

json_t *sim_cblog_list(struct sim_cblog *log, uint64_t since, size_t limit)
{
    json_t *list = json_array();
    uint64_t next = since;
    pthread_mutex_lock(&log->lock);
    size_t start = 0;
    if (log->count > 0) {
        uint64_t first = log->ring[log->head].seq;
        start = since >= first ? (size_t)(since - first + 1) : 0;
    }
    for (size_t i = start; list && i < log->count && json_array_size(list) < limit; i++) {
        const struct entry *e = &log->ring[(log->head + i) % log->cap];
        json_array_append_new(list, entry_json(e));
        next = e->seq;
    }
    pthread_mutex_unlock(&log->lock);
    return json_pack("{s:o, s:I}", "callbacks", list ? list : json_array(), "next",
                     (json_int_t)next);
}
