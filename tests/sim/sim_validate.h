/* The strict messages:send validator: checks a request body the way Sinch does (facts 3.1-3.8
 * of docs/sinch-conversation-api.md) and names the first violation. A pure function of its
 * inputs, no I/O and no globals, so tests/unit/test_sim_validate.c can run it on a table. */
#ifndef SIM_VALIDATE_H
#define SIM_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define SIM_FIELD_MAX 160 /* longest field path kept in a verdict; longer ones are cut */
#define SIM_WHY_MAX   256

/* What the validator knows of the app that sends. */
struct sim_app {
    const char *app_id;          /* the only app_id the project has */
    const char *const *channels; /* channels configured in the app */
    size_t n_channels;
};

struct sim_verdict {
    int status;                    /* 200 accepted, 400 invalid, 404 unknown app_id */
    char field[SIM_FIELD_MAX];     /* dotted path of the first violation, "" when none */
    char description[SIM_WHY_MAX]; /* what is wrong with it */
};

/* Checks a parsed body. `body` and `app` are borrowed (jansson iterates only non-const
 * objects; the body is not changed). Returns v->status. */
int sim_validate_send(json_t *body, const struct sim_app *app, struct sim_verdict *v);

/* Parses `len` bytes of `text` (need not be NUL-terminated) and checks them; a body that is not
 * JSON is a 400. Returns v->status. */
int sim_validate_send_text(const char *text, size_t len, const struct sim_app *app,
                           struct sim_verdict *v);

/* True for the channel names of Sinch's ConversationChannel enum (CHANNEL_UNSPECIFIED is not
 * one: a client must not send it). */
bool sim_validate_channel_known(const char *name);

#endif
