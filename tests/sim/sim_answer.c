/* Answer builders. Bodies are heap strings the answer owns until sim_http.c has written them;
 * error bodies go through jansson because they echo client input (field names) that needs
 * escaping. */
#include "sim_answer.h"

#include <stdlib.h>
#include <string.h>

static const char json_ctype[] = "application/json";

void sim_answer_reset(struct sim_answer *a)
{
    free(a->body);
    memset(a, 0, sizeof(*a));
}

void sim_answer_take(struct sim_answer *a, int status, const char *content_type, char *body,
                     size_t len)
{
    free(a->body);
    a->status = status;
    a->content_type = content_type;
    a->body = body;
    a->body_len = body ? len : 0;
}

void sim_answer_json(struct sim_answer *a, int status, json_t *body)
{
    sim_answer_json_flags(a, status, body, JSON_COMPACT);
}

void sim_answer_json_flags(struct sim_answer *a, int status, json_t *body, size_t flags)
{
    char *text = body ? json_dumps(body, flags | JSON_ENCODE_ANY) : NULL;
    json_decref(body);
    if (!text) {
        /* Out of memory: still answer, with a status that says so. */
        sim_answer_take(a, 500, json_ctype, NULL, 0);
        return;
    }
    sim_answer_take(a, status, json_ctype, text, strlen(text));
}

void sim_answer_text(struct sim_answer *a, int status, const char *text)
{
    char *copy = strdup(text);
    sim_answer_take(a, copy ? status : 500, json_ctype, copy, copy ? strlen(copy) : 0);
}

const char *sim_rpc_status(int status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 405:
    case 501:
        return "UNIMPLEMENTED"; /* what grpc-gateway answers for a method it does not route */
    case 409:
        return "ALREADY_EXISTS";
    case 411:
    case 413:
        return "INVALID_ARGUMENT";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 500:
        return "INTERNAL";
    case 502:
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return "UNKNOWN";
    }
}

const char *sim_reason_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 200:
        return "OK";
    default:
        return status < 300 ? "OK" : "Error";
    }
}

void sim_answer_error(struct sim_answer *a, int status, const char *message, const char *field,
                      const char *description)
{
    json_t *details = json_array();
    if (field && details) {
        json_array_append_new(details, json_pack("{s:s, s:[{s:s, s:s}]}", "@type",
                                                 "type.googleapis.com/google.rpc.BadRequest",
                                                 "field_violations", "field", field, "description",
                                                 description ? description : ""));
    }
    sim_answer_json(a, status,
                    json_pack("{s:{s:i, s:s, s:s, s:o}}", "error", "code", status, "message",
                              message, "status", sim_rpc_status(status), "details",
                              details ? details : json_array()));
}
