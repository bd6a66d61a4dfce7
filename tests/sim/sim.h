/* sinch-sim's shared state: the command-line settings, the modules' objects and the request in
 * hand, plus the entry points of the endpoint handlers. One `struct sim` lives in main() and is
 * reached from lws callbacks through the context's user pointer. Thread: the loop (lws's one
 * service thread) owns all of it, except that the webhook registry, the callback log and the
 * deliverer are shared with the delivery thread and lock themselves (see their headers). */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_answer.h"
#include "sim_cblog.h"
#include "sim_deliver.h"
#include "sim_faults.h"
#include "sim_ids.h"
#include "sim_record.h"
#include "sim_reports.h"
#include "sim_token.h"
#include "sim_validate.h"
#include "sim_webhooks.h"

#define SIM_MAX_CHANNELS 32
#define SIM_BODY_MAX     (4u << 20) /* larger request bodies get a 413 */

struct sim_config {
    const char *host; /* where to listen: an IPv4 or IPv6 address */
    int port;         /* 0: any free port (the one chosen is printed) */
    const char *project_id;
    const char *app_id;
    const char *key_id;
    const char *key_secret;
    long token_ttl;                         /* expires_in of issued tokens, seconds */
    const char *channels[SIM_MAX_CHANNELS]; /* configured in the app; point into channels_buf */
    size_t n_channels;
    char *channels_buf; /* owned: the --channels list, cut at the commas */
    size_t record_max;  /* requests kept for /_sim/requests (and attempts for /_sim/callbacks) */
    bool verbose;       /* one line per request (and callback attempt) on stderr */
    const char *webhook_url;    /* receives every trigger; NULL for none */
    const char *webhook_secret; /* signs callbacks to webhook_url; NULL: unsigned */
    long report_delay_ms;       /* gap before each delivery report */
    long webhook_retry_ms;      /* first retry of a failed callback; doubles */
    long webhook_max_attempts;  /* per callback and target */
    bool no_reports;            /* play back no delivery reports */
};

struct sim {
    struct sim_config cfg;
    struct sim_app app; /* the validator's view of cfg */
    char *basic_b64;    /* owned: base64 of "key_id:key_secret" without '=' padding */
    struct sim_ids ids;
    struct sim_tokens *tokens;
    struct sim_faults *faults;
    struct sim_records *records;
    struct sim_stats stats;
    struct sim_webhooks *webhooks;    /* registrations and --webhook-url */
    struct sim_cblog *cblog;          /* callback attempts, for /_sim/callbacks */
    struct sim_deliver *deliver;      /* the delivery thread */
    struct sim_delivery_mode reports; /* what the next sends' reports say */
};

enum sim_method {
    SIM_GET,
    SIM_POST,
    SIM_PUT,
    SIM_PATCH,
    SIM_DELETE,
    SIM_OTHER_METHOD,
};

/* A complete request, as the handlers see it; every pointer is borrowed for the call. */
struct sim_request {
    enum sim_method method;
    const char *method_name;
    const char *path;          /* URL-decoded, without the query */
    const char *query;         /* "a=1&b=2", "" when none */
    const char *authorization; /* the Authorization header, "" when absent */
    const char *content_type;  /* "" when absent */
    const char *body;          /* NUL-terminated, NULL when none */
    size_t body_len;
    int64_t now_ms;
};

/* sim_api.c: the Sinch endpoints. */

/* Which endpoint `path` belongs to (for fault matching and recording). */
enum sim_endpoint sim_api_endpoint(const char *path);

/* Answers a request to a Sinch endpoint, sets rec->message_id when a send is accepted and counts
 * it in the stats. */
void sim_api_handle(struct sim *s, enum sim_endpoint ep, const struct sim_request *rq,
                    struct sim_answer *a, struct sim_record *rec);

/* The default body of a fault's status: Sinch's error shape, or OAuth's on the token endpoint. */
void sim_api_fault_body(enum sim_endpoint ep, int status, struct sim_answer *a);

/* Answers 401 and returns false unless the request carries our token or key (facts 2.1-2.3). */
bool sim_api_authorised(struct sim *s, const struct sim_request *rq, struct sim_answer *a);

/* "application/json", optionally with parameters. */
bool sim_api_is_json_type(const char *content_type);

/* 405 with an Allow header (`allow` is a static string). */
void sim_api_method_not_allowed(struct sim_answer *a, const char *allow);

/* sim_webhooks_api.c: the webhook management API (fact 6.1). `rest` is the path after
 * /v1/projects/{project}/; `project_ok` says whether that project is ours. */
void sim_webhooks_api_handle(struct sim *s, const struct sim_request *rq, const char *rest,
                             bool project_ok, struct sim_answer *a);

/* True when `rest` (as above) is a path of the webhook management API. */
bool sim_webhooks_api_path(const char *rest);

/* sim_control.c: /_sim/... */

bool sim_control_is_control(const char *path);
void sim_control_handle(struct sim *s, const struct sim_request *rq, struct sim_answer *a);

/* sim_inject.c: POST /_sim/inject and GET/POST /_sim/delivery-mode. */
void sim_inject_handle(struct sim *s, const struct sim_request *rq, struct sim_answer *a);
void sim_inject_mode_get(struct sim *s, const struct sim_request *rq, struct sim_answer *a);
void sim_inject_mode_set(struct sim *s, const struct sim_request *rq, struct sim_answer *a);

/* sim_http.c: the lws protocol that serves both. */

struct lws_protocols;
extern const struct lws_protocols sim_http_protocol;

#endif
