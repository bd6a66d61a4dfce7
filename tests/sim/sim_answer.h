/* An HTTP answer being prepared: status, body, the few extra headers Sinch sends, and what a
 * fault adds (a delay, a drop). Handlers fill one in; sim_http.c writes it. Also the builders of
 * Sinch's error shape (fact 4.1). Thread: the loop. */
#ifndef SIM_ANSWER_H
#define SIM_ANSWER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "sim_faults.h"

struct sim_answer {
    int status;
    const char *content_type; /* a static string */
    char *body;               /* owned */
    size_t body_len;
    const char *allow;                           /* Allow header of a 405, static, or NULL */
    char retry_after[SIM_HEADER_VALUE_MAX];      /* "" for none */
    char www_authenticate[SIM_HEADER_VALUE_MAX]; /* "" for none */
    long delay_ms;                               /* write it this much later */
    bool drop;                                   /* close instead of answering */
    bool partial;                                /* close halfway through the body */
};

/* Frees the body and zeroes the answer. */
void sim_answer_reset(struct sim_answer *a);

/* Takes ownership of `body`, a malloc'd string of `len` bytes. */
void sim_answer_take(struct sim_answer *a, int status, const char *content_type, char *body,
                     size_t len);

/* Serialises `body` (stolen, like json_object_set_new()) as the answer. */
void sim_answer_json(struct sim_answer *a, int status, json_t *body);

/* The same with jansson's dump `flags` (JSON_ENCODE_ANY is added). */
void sim_answer_json_flags(struct sim_answer *a, int status, json_t *body, size_t flags);

/* Copies `text` (NUL-terminated) as an application/json body. */
void sim_answer_text(struct sim_answer *a, int status, const char *text);

/* Sinch's error shape: {"error":{"code","message","status","details":[...]}}. When `field` is not
 * NULL the details carry one google.rpc.BadRequest field violation with `description`. */
void sim_answer_error(struct sim_answer *a, int status, const char *message, const char *field,
                      const char *description);

/* The reason phrase of an HTTP status line ("Too Many Requests"). */
const char *sim_reason_phrase(int status);

/* The google.rpc canonical status name Sinch puts beside an HTTP status ("NOT_FOUND"). */
const char *sim_rpc_status(int status);

#endif
