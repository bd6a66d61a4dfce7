/* The fault queue as a singly linked FIFO with a tail pointer. Rules are parsed strictly (an
 * unknown key is a typo in a test, and a silent typo makes a test pass for the wrong reason). */
#include "sim_faults.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DELAY_MAX_MS (10L * 60 * 1000) /* no test waits longer than this */
#define FOR_MAX_MS   (60L * 60 * 1000) /* an outage of an hour, for a manual run against it */

enum match {
    MATCH_SEND = SIM_EP_SEND,
    MATCH_TOKEN = SIM_EP_TOKEN,
    MATCH_APP = SIM_EP_APP,
    MATCH_WEBHOOKS = SIM_EP_WEBHOOKS,
    MATCH_ANY = 100,
};

struct rule {
    struct rule *next;
    enum match match;
    long count;       /* -1: until cleared (or until_ms) */
    int64_t until_ms; /* gone at this time (for_ms after it was added); 0: no time limit */
    struct sim_fault_hit hit;
};

struct sim_faults {
    struct rule *head;
    struct rule *tail;
};

static const char *const endpoint_names[] = {"send", "token", "app", "other", "webhooks"};

const char *sim_endpoint_name(enum sim_endpoint ep)
{
    return endpoint_names[ep];
}

struct sim_faults *sim_faults_new(void)
{
    return calloc(1, sizeof(struct sim_faults));
}

static void rule_free(struct rule *r)
{
    free(r->hit.body);
    free(r);
}

void sim_faults_clear(struct sim_faults *q)
{
    while (q->head) {
        struct rule *r = q->head;
        q->head = r->next;
        rule_free(r);
    }
    q->tail = NULL;
}

void sim_faults_free(struct sim_faults *q)
{
    if (q) {
        sim_faults_clear(q);
        free(q);
    }
}

static bool set_header(char *dst, json_t *val, const char *name, char *why, size_t why_len)
{
    if (json_is_integer(val)) {
        snprintf(dst, SIM_HEADER_VALUE_MAX, "%lld", (long long)json_integer_value(val));
        return true;
    }
    if (!json_is_string(val) || json_string_length(val) >= SIM_HEADER_VALUE_MAX ||
        strpbrk(json_string_value(val), "\r\n")) {
        snprintf(why, why_len, "%s must be a string of one line, under %d bytes", name,
                 SIM_HEADER_VALUE_MAX);
        return false;
    }
    snprintf(dst, SIM_HEADER_VALUE_MAX, "%s", json_string_value(val));
    return true;
}

static bool parse_match(json_t *val, enum match *out)
{
    static const struct {
        const char *name;
        enum match match;
    } names[] = {
        {"send", MATCH_SEND},         {"token", MATCH_TOKEN}, {"app", MATCH_APP},
        {"webhooks", MATCH_WEBHOOKS}, {"any", MATCH_ANY},
    };
    for (size_t i = 0; json_is_string(val) && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(json_string_value(val), names[i].name) == 0) {
            *out = names[i].match;
            return true;
        }
    }
    return false;
}

/* Reads one rule, added at `now_ms`; on error returns NULL with `why` set. */
static struct rule *parse_rule(json_t *obj, int64_t now_ms, char *why, size_t why_len)
{
    const char *key;
    json_t *val;
    bool count_given = false;
    struct rule *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    r->count = 1;
    if (!json_is_object(obj)) {
        snprintf(why, why_len, "each rule must be an object");
        goto bad;
    }
    if (!parse_match(json_object_get(obj, "match"), &r->match)) {
        snprintf(why, why_len,
                 "match must be \"send\", \"token\", \"app\", \"webhooks\" or \"any\"");
        goto bad;
    }
    json_object_foreach(obj, key, val)
    {
        if (strcmp(key, "match") == 0) {
            continue;
        } else if (strcmp(key, "count") == 0) {
            count_given = true;
            r->count = json_is_integer(val) ? (long)json_integer_value(val) : 0;
            if (r->count < -1 || r->count == 0) {
                snprintf(why, why_len, "count must be a positive integer or -1");
                goto bad;
            }
        } else if (strcmp(key, "status") == 0) {
            r->hit.status = json_is_integer(val) ? (int)json_integer_value(val) : 0;
            if (r->hit.status < 200 || r->hit.status > 599) {
                snprintf(why, why_len, "status must be an HTTP status 200..599");
                goto bad;
            }
        } else if (strcmp(key, "delay_ms") == 0) {
            r->hit.delay_ms = json_is_integer(val) ? (long)json_integer_value(val) : -1;
            if (r->hit.delay_ms < 0 || r->hit.delay_ms > DELAY_MAX_MS) {
                snprintf(why, why_len, "delay_ms must be an integer 0..%ld", DELAY_MAX_MS);
                goto bad;
            }
        } else if (strcmp(key, "for_ms") == 0) {
            json_int_t ms = json_is_integer(val) ? json_integer_value(val) : 0;
            if (ms < 1 || ms > FOR_MAX_MS) {
                snprintf(why, why_len, "for_ms must be an integer 1..%ld", FOR_MAX_MS);
                goto bad;
            }
            r->until_ms = now_ms + (int64_t)ms;
        } else if (strcmp(key, "drop") == 0 || strcmp(key, "partial") == 0) {
            if (!json_is_boolean(val)) {
                snprintf(why, why_len, "%s must be true or false", key);
                goto bad;
            }
            bool *flag = strcmp(key, "drop") == 0 ? &r->hit.drop : &r->hit.partial;
            *flag = json_is_true(val);
        } else if (strcmp(key, "retry_after") == 0) {
            if (!set_header(r->hit.retry_after, val, key, why, why_len)) {
                goto bad;
            }
        } else if (strcmp(key, "www_authenticate") == 0) {
            if (!set_header(r->hit.www_authenticate, val, key, why, why_len)) {
                goto bad;
            }
        } else if (strcmp(key, "body") == 0 || strcmp(key, "raw_body") == 0) {
            if (r->hit.body) {
                snprintf(why, why_len, "give body or raw_body, not both");
                goto bad;
            }
            r->hit.body_is_json = strcmp(key, "body") == 0;
            if (!r->hit.body_is_json && !json_is_string(val)) {
                snprintf(why, why_len, "raw_body must be a string");
                goto bad;
            }
            r->hit.body = r->hit.body_is_json ? json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY)
                                              : strdup(json_string_value(val));
            if (!r->hit.body) {
                snprintf(why, why_len, "out of memory");
                goto bad;
            }
        } else {
            snprintf(why, why_len, "unknown key \"%s\" in a rule", key);
            goto bad;
        }
    }
    if (r->until_ms && !count_given) {
        r->count = -1; /* for_ms alone: every matching request until the time is up */
    }
    return r;
bad:
    rule_free(r);
    return NULL;
}

bool sim_faults_add(struct sim_faults *q, json_t *req, int64_t now_ms, size_t *queued, char *why,
                    size_t why_len)
{
    json_t *rules = json_object_get(req, "rules");
    struct rule *head = NULL, *tail = NULL;
    size_t i;
    json_t *item;

    if (!json_is_object(req) || json_object_size(req) != 1 || !json_is_array(rules)) {
        snprintf(why, why_len, "expected {\"rules\": [...]}");
        return false;
    }
    json_array_foreach(rules, i, item)
    {
        char rule_why[256];
        struct rule *r = parse_rule(item, now_ms, rule_why, sizeof(rule_why));
        if (!r) {
            snprintf(why, why_len, "rules[%zu]: %s", i, rule_why);
            while (head) {
                struct rule *next = head->next;
                rule_free(head);
                head = next;
            }
            return false;
        }
        if (tail) {
            tail->next = r;
        } else {
            head = r;
        }
        tail = r;
    }
    if (head) {
        if (q->tail) {
            q->tail->next = head;
        } else {
            q->head = head;
        }
        q->tail = tail;
    }
    *queued = json_array_size(rules);
    return true;
}

static void unlink_rule(struct sim_faults *q, struct rule *prev, struct rule *r)
{
    if (prev) {
        prev->next = r->next;
    } else {
        q->head = r->next;
    }
    if (q->tail == r) {
        q->tail = prev;
    }
}

bool sim_faults_take(struct sim_faults *q, enum sim_endpoint ep, int64_t now_ms,
                     struct sim_fault_hit *hit)
{
    struct rule *prev = NULL, *r = q->head;
    while (r) {
        if (r->until_ms && now_ms >= r->until_ms) {
            struct rule *next = r->next;
            unlink_rule(q, prev, r);
            rule_free(r);
            r = next;
            continue;
        }
        if (r->match == MATCH_ANY || (int)r->match == (int)ep) {
            break;
        }
        prev = r;
        r = r->next;
    }
    if (!r) {
        return false;
    }
    *hit = r->hit;
    hit->body = NULL;
    if (r->count > 0 && --r->count == 0) {
        /* The last use: hand the body over instead of copying it. */
        hit->body = r->hit.body;
        r->hit.body = NULL;
        unlink_rule(q, prev, r);
        rule_free(r);
    } else if (r->hit.body) {
        hit->body = strdup(r->hit.body);
    }
    return true;
}
