/* The recorder: an array that doubles until it holds `max` records, then turns into a ring that
 * overwrites the oldest. Seqs are consecutive, so the record of a seq is found by arithmetic.
 * Bodies stay raw until someone lists them. */
#include "sim_record.h"

#include <stdlib.h>
#include <string.h>

#define INITIAL_RECORDS 1024

struct sim_records {
    struct sim_record *ring;
    size_t cap; /* allocated entries, at most max */
    size_t max;
    size_t head; /* index of the oldest record */
    size_t count;
    uint64_t first_seq; /* seq of the oldest record (when count > 0) */
    uint64_t next_seq;
};

static const char *const auth_names[] = {"none", "bearer", "basic"};

struct sim_records *sim_records_new(size_t max)
{
    struct sim_records *r = calloc(1, sizeof(*r));
    if (!r) {
        return NULL;
    }
    r->max = max > 0 ? max : 1;
    r->next_seq = 1;
    return r;
}

static void record_release(struct sim_record *rec)
{
    free(rec->path);
    free(rec->body);
    rec->path = NULL;
    rec->body = NULL;
}

void sim_records_clear(struct sim_records *r)
{
    for (size_t i = 0; i < r->count; i++) {
        record_release(&r->ring[(r->head + i) % r->cap]);
    }
    r->head = 0;
    r->count = 0;
}

void sim_records_free(struct sim_records *r)
{
    if (r) {
        sim_records_clear(r);
        free(r->ring);
        free(r);
    }
}

uint64_t sim_records_add(struct sim_records *r, struct sim_record *rec)
{
    struct sim_record *slot;

    if (r->count == r->cap && r->cap < r->max) {
        /* Still growing, so the ring has never wrapped: head is 0 and realloc keeps order. */
        size_t cap = r->cap ? r->cap * 2 : INITIAL_RECORDS;
        if (cap > r->max) {
            cap = r->max;
        }
        struct sim_record *ring = realloc(r->ring, cap * sizeof(*ring));
        if (!ring) {
            record_release(rec);
            return 0;
        }
        r->ring = ring;
        r->cap = cap;
    }
    if (r->count == r->cap) {
        slot = &r->ring[r->head];
        record_release(slot);
        r->head = (r->head + 1) % r->cap;
        r->count--;
    } else {
        slot = &r->ring[(r->head + r->count) % r->cap];
    }
    *slot = *rec;
    slot->seq = r->next_seq++;
    r->count++;
    r->first_seq = r->ring[r->head].seq;
    rec->path = NULL;
    rec->body = NULL;
    return slot->seq;
}

static json_t *body_json(const struct sim_record *rec)
{
    if (!rec->body) {
        return json_null();
    }
    json_t *val = json_loadb(rec->body, rec->body_len, JSON_DECODE_ANY, NULL);
    if (!val) {
        val = json_stringn(rec->body, rec->body_len); /* NULL when not UTF-8 */
    }
    return val ? val : json_null();
}

static json_t *record_json(const struct sim_record *rec)
{
    json_t *o =
        json_pack("{s:I, s:I, s:s, s:s, s:s, s:i, s:s, s:o}", "seq", (json_int_t)rec->seq,
                  "time_ms", (json_int_t)rec->time_ms, "endpoint", sim_endpoint_name(rec->endpoint),
                  "method", rec->method, "path", rec->path ? rec->path : "", "status", rec->status,
                  "auth", auth_names[rec->auth], "body", body_json(rec));
    if (o && rec->message_id[0]) {
        json_object_set_new(o, "message_id", json_string(rec->message_id));
    }
    return o;
}

json_t *sim_records_list(const struct sim_records *r, uint64_t since, size_t limit)
{
    json_t *list = json_array();
    uint64_t next = since;
    size_t start = 0;

    if (r->count > 0 && since >= r->first_seq) {
        start = (size_t)(since - r->first_seq + 1);
    }
    for (size_t i = start; list && i < r->count && json_array_size(list) < limit; i++) {
        const struct sim_record *rec = &r->ring[(r->head + i) % r->cap];
        json_array_append_new(list, record_json(rec));
        next = rec->seq;
    }
    return json_pack("{s:o, s:I}", "requests", list ? list : json_array(), "next",
                     (json_int_t)next);
}

void sim_stats_count_send(struct sim_stats *st, int64_t now_ms)
{
    int64_t second = now_ms / 1000;
    if (second != st->cur_second) {
        st->cur_second = second;
        st->cur_second_sends = 0;
    }
    if (++st->cur_second_sends > st->max_sends_in_one_second) {
        st->max_sends_in_one_second = st->cur_second_sends;
    }
}

json_t *sim_stats_json(const struct sim_stats *st)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "requests", (json_int_t)st->requests,
                     "sends_accepted", (json_int_t)st->sends_accepted, "sends_rejected",
                     (json_int_t)st->sends_rejected, "token_requests",
                     (json_int_t)st->token_requests, "tokens_issued", (json_int_t)st->tokens_issued,
                     "faults_applied", (json_int_t)st->faults_applied, "max_sends_in_one_second",
                     (json_int_t)st->max_sends_in_one_second);
}
