/* The registry: at most SIM_WEBHOOKS_MAX webhooks in creation order, each kept as the JSON
 * object the API answers plus what delivery needs (target, secret, trigger mask). A mask of
 * every trigger some HTTP target takes is kept in an atomic, so messages:send can ask "does
 * anyone want delivery reports?" without the lock. Checks are strict, like the validator's:
 * unknown fields are refused, so a typo in a test fails loudly. */
#include "sim_webhooks.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECRET_MAX 1024 /* our own cap: Sinch documents none */

struct webhook {
    char id[SIM_WEBHOOK_ID_MAX];
    json_t *obj;   /* the webhook as answered (owned) */
    uint32_t mask; /* SIM_TRIGGER_BIT of each trigger; 0 for DISMISS */
};

struct sim_webhooks {
    pthread_mutex_t lock;
    struct webhook items[SIM_WEBHOOKS_MAX]; /* {lock} */
    size_t n;                               /* {lock} */
    char *url;                              /* --webhook-url, NULL for none; never changes */
    char *secret;                           /* --webhook-secret, NULL for none; never changes */
    atomic_uint subscribed;                 /* union of the masks, and all for --webhook-url */
};

/* The fields of a create or update body (borrowed; NULL when absent). */
struct fields {
    json_t *app_id, *target, *target_type, *secret, *triggers, *client_credentials;
};

void sim_target_release(struct sim_target *t)
{
    free(t->url);
    free(t->secret);
    memset(t, 0, sizeof(*t));
}

struct sim_webhooks *sim_webhooks_new(const char *url, const char *secret)
{
    struct sim_webhooks *w = calloc(1, sizeof(*w));
    if (!w) {
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    w->url = url ? strdup(url) : NULL;
    w->secret = secret && secret[0] ? strdup(secret) : NULL;
    atomic_init(&w->subscribed, url ? SIM_TRIGGER_ALL : 0u);
    if ((url && !w->url) || (secret && secret[0] && !w->secret)) {
        sim_webhooks_free(w);
        return NULL;
    }
    return w;
}

void sim_webhooks_free(struct sim_webhooks *w)
{
    if (!w) {
        return;
    }
    for (size_t i = 0; i < w->n; i++) {
        json_decref(w->items[i].obj);
    }
    free(w->url);
    free(w->secret);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/* ---- loopback targets ---- */

bool sim_url_is_loopback(const char *url)
{
    char host[64];
    const char *auth;
    if (strncasecmp(url, "http://", 7) == 0) {
        auth = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        auth = url + 8;
    } else {
        return false;
    }
    const char *end = auth + strcspn(auth, "/?#");
    for (const char *c = auth; c < end; c++) {
        if (*c == '@') { /* user:password@host */
            auth = c + 1;
        }
    }
    const char *h = auth, *h_end, *rest;
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (!close) {
            return false;
        }
        h++;
        h_end = close;
        rest = close + 1;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        h_end = colon ? colon : end;
        rest = h_end;
    }
    if (rest < end) {
        if (*rest != ':') {
            return false;
        }
        for (const char *d = rest + 1; d < end; d++) {
            if (*d < '0' || *d > '9') {
                return false;
            }
        }
    }
    size_t host_len = (size_t)(h_end - h);
    if (host_len == 0 || host_len >= sizeof(host)) {
        return false;
    }
    memcpy(host, h, host_len);
    host[host_len] = '\0';

    unsigned char addr[16];
    if (strcasecmp(host, "localhost") == 0) {
        return true;
    }
    if (inet_pton(AF_INET, host, addr) == 1) {
        return addr[0] == 127;
    }
    if (inet_pton(AF_INET6, host, addr) == 1) {
        static const unsigned char loop6[16] = {[15] = 1};
        static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
        return memcmp(addr, loop6, 16) == 0 || (memcmp(addr, mapped, 12) == 0 && addr[12] == 127);
    }
    return false;
}

/* ---- checking a body ---- */

static bool refuse(struct sim_webhook_error *err, int status, const char *field, const char *why)
{
    err->status = status;
    snprintf(err->field, sizeof(err->field), "%s", field);
    snprintf(err->why, sizeof(err->why), "%s", why);
    return false;
}

/* Sorts the keys of `body` into `f`; unknown keys are refused, "id" is read-only and ignored. */
static bool read_fields(json_t *body, struct fields *f, struct sim_webhook_error *err)
{
    const char *key;
    json_t *val;
    memset(f, 0, sizeof(*f));
    if (!json_is_object(body)) {
        return refuse(err, 400, "", "the body must be a JSON object (a Webhook)");
    }
    json_object_foreach(body, key, val)
    {
        json_t **slot = strcmp(key, "app_id") == 0               ? &f->app_id
                        : strcmp(key, "target") == 0             ? &f->target
                        : strcmp(key, "target_type") == 0        ? &f->target_type
                        : strcmp(key, "secret") == 0             ? &f->secret
                        : strcmp(key, "triggers") == 0           ? &f->triggers
                        : strcmp(key, "client_credentials") == 0 ? &f->client_credentials
                                                                 : NULL;
        if (slot) {
            *slot = json_is_null(val) ? NULL : val;
        } else if (strcmp(key, "id") != 0) {
            char why[128];
            snprintf(why, sizeof(why), "Invalid JSON payload received. Unknown name \"%.64s\"",
                     key);
            return refuse(err, 400, key, why);
        }
    }
    return true;
}

static bool check_fields(const struct fields *f, const char *app_id, struct sim_webhook_error *err)
{
    if (f->app_id && (!json_is_string(f->app_id) || !json_string_value(f->app_id)[0])) {
        return refuse(err, 400, "app_id", "must be a non-empty string");
    }
    if (f->app_id && strcmp(json_string_value(f->app_id), app_id) != 0) {
        return refuse(err, 404, "", "App not found in this project");
    }
    if (f->target) {
        if (!json_is_string(f->target) || !json_string_value(f->target)[0]) {
            return refuse(err, 400, "target", "must be a non-empty URL");
        }
        if (json_string_length(f->target) > SIM_WEBHOOK_URL_MAX) {
            return refuse(err, 400, "target", "must be at most 742 characters");
        }
        const char *url = json_string_value(f->target);
        if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
            return refuse(err, 400, "target", "must be an http:// or https:// URL");
        }
        if (!sim_url_is_loopback(url)) {
            return refuse(err, 400, "target",
                          "sinch-sim delivers only to loopback: the host must be 127.0.0.0/8, "
                          "localhost or [::1]");
        }
    }
    if (f->target_type) {
        const char *tt = json_string_value(f->target_type);
        if (!tt || (strcmp(tt, "HTTP") != 0 && strcmp(tt, "DISMISS") != 0)) {
            return refuse(err, 400, "target_type", "must be \"HTTP\" or \"DISMISS\"");
        }
    }
    if (f->secret && (!json_is_string(f->secret) || json_string_length(f->secret) > SECRET_MAX)) {
        return refuse(err, 400, "secret", "must be a string of at most 1024 characters");
    }
    if (f->client_credentials && !json_is_object(f->client_credentials)) {
        return refuse(err, 400, "client_credentials", "must be an object");
    }
    if (f->triggers) {
        size_t i;
        json_t *t;
        if (!json_is_array(f->triggers) || json_array_size(f->triggers) == 0) {
            return refuse(err, 400, "triggers", "must be a non-empty array of trigger names");
        }
        json_array_foreach(f->triggers, i, t)
        {
            enum sim_trigger trig;
            if (!json_is_string(t) || !sim_trigger_parse(json_string_value(t), &trig)) {
                char field[32];
                snprintf(field, sizeof(field), "triggers[%zu]", i);
                return refuse(err, 400, field,
                              "not a webhook trigger (UNSPECIFIED_TRIGGER is not allowed)");
            }
        }
    }
    return true;
}

/* The webhook object as answered, in Sinch's field order. */
static json_t *build(const char *id, const char *app_id, const struct fields *f)
{
    json_t *o =
        json_pack("{s:s, s:s, s:O, s:s}", "id", id, "app_id", app_id, "target", f->target,
                  "target_type", f->target_type ? json_string_value(f->target_type) : "HTTP");
    if (o && f->secret) {
        json_object_set(o, "secret", f->secret);
    }
    if (o) {
        json_object_set_new(o, "triggers", json_deep_copy(f->triggers));
    }
    if (o && f->client_credentials) {
        json_object_set_new(o, "client_credentials", json_deep_copy(f->client_credentials));
    }
    return o;
}

static uint32_t mask_of(json_t *obj)
{
    uint32_t mask = 0;
    size_t i;
    json_t *t;
    enum sim_trigger trig;
    if (strcmp(json_string_value(json_object_get(obj, "target_type")), "HTTP") != 0) {
        return 0;
    }
    json_array_foreach(json_object_get(obj, "triggers"), i, t)
    {
        if (sim_trigger_parse(json_string_value(t), &trig)) {
            mask |= SIM_TRIGGER_BIT(trig);
        }
    }
    return mask;
}

/* Call with the lock held after any change. */
static void update_subscribed(struct sim_webhooks *w)
{
    uint32_t mask = w->url ? SIM_TRIGGER_ALL : 0u;
    for (size_t i = 0; i < w->n; i++) {
        mask |= w->items[i].mask;
    }
    atomic_store(&w->subscribed, mask);
}

/* Index of webhook `id`, or -1. Lock held. */
static int find(const struct sim_webhooks *w, const char *id)
{
    for (size_t i = 0; i < w->n; i++) {
        if (strcmp(w->items[i].id, id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* True when another webhook than index `except` has `target`. Lock held. */
static bool target_taken(const struct sim_webhooks *w, json_t *target, int except)
{
    for (size_t i = 0; i < w->n; i++) {
        if ((int)i != except && json_equal(json_object_get(w->items[i].obj, "target"), target)) {
            return true;
        }
    }
    return false;
}

json_t *sim_webhooks_create(struct sim_webhooks *w, json_t *body, const char *app_id,
                            const char *id, struct sim_webhook_error *err)
{
    struct fields f;
    json_t *out = NULL;
    if (!read_fields(body, &f, err) || !check_fields(&f, app_id, err)) {
        return NULL;
    }
    if (!f.app_id) {
        refuse(err, 400, "app_id", "is required");
        return NULL;
    }
    if (!f.target) {
        refuse(err, 400, "target", "is required");
        return NULL;
    }
    if (!f.triggers) {
        refuse(err, 400, "triggers", "must be a non-empty array of trigger names");
        return NULL;
    }
    pthread_mutex_lock(&w->lock);
    if (w->n == SIM_WEBHOOKS_MAX) {
        refuse(err, 400, "", "An app can have at most 5 webhooks");
    } else if (target_taken(w, f.target, -1)) {
        refuse(err, 400, "target", "A webhook with this target already exists for the app");
    } else {
        struct webhook *wh = &w->items[w->n];
        wh->obj = build(id, app_id, &f);
        out = wh->obj ? json_deep_copy(wh->obj) : NULL;
        if (!out) {
            json_decref(wh->obj);
            refuse(err, 500, "", "out of memory");
        } else {
            snprintf(wh->id, sizeof(wh->id), "%s", id);
            wh->mask = mask_of(wh->obj);
            w->n++;
            update_subscribed(w);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return out;
}

/* True when the comma-separated `mask` names `field` (or when there is no mask). */
static bool in_mask(const char *mask, const char *field)
{
    size_t n = strlen(field);
    if (!mask || !mask[0]) {
        return true;
    }
    for (const char *p = mask; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, field, n) == 0) {
            return true;
        }
        p += len;
        p += *p == ',';
    }
    return false;
}

static bool check_mask(const char *mask, struct sim_webhook_error *err)
{
    static const char *const known[] = {"app_id", "target",   "target_type",
                                        "secret", "triggers", "client_credentials"};
    for (const char *p = mask ? mask : ""; *p;) {
        size_t len = strcspn(p, ",");
        bool ok = false;
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            ok = ok || (strlen(known[i]) == len && strncmp(p, known[i], len) == 0);
        }
        if (!ok && len > 0) {
            return refuse(err, 400, "update_mask", "names a field a Webhook does not have");
        }
        p += len;
        p += *p == ',';
    }
    return true;
}

json_t *sim_webhooks_update(struct sim_webhooks *w, const char *id, json_t *body, const char *mask,
                            const char *app_id, struct sim_webhook_error *err)
{
    struct fields f, cur;
    json_t *out = NULL;
    if (!read_fields(body, &f, err) || !check_mask(mask, err) || !check_fields(&f, app_id, err)) {
        return NULL;
    }
    pthread_mutex_lock(&w->lock);
    int i = find(w, id);
    if (i < 0) {
        refuse(err, 404, "", "Webhook not found");
        goto out;
    }
    struct webhook *wh = &w->items[i];
    if (!read_fields(wh->obj, &cur, err)) {
        goto out;
    }
    /* Take each field the body gives (and the mask names); the rest stay. */
    json_t **fs[] = {&f.target, &f.target_type, &f.secret, &f.triggers, &f.client_credentials};
    json_t **cs[] = {&cur.target, &cur.target_type, &cur.secret, &cur.triggers,
                     &cur.client_credentials};
    static const char *const names[] = {"target", "target_type", "secret", "triggers",
                                        "client_credentials"};
    for (size_t k = 0; k < sizeof(fs) / sizeof(fs[0]); k++) {
        if (in_mask(mask, names[k]) && json_object_get(body, names[k])) {
            *cs[k] = *fs[k]; /* a JSON null clears an optional field */
        }
    }
    if (!cur.target || !cur.triggers) {
        refuse(err, 400, cur.target ? "triggers" : "target", "cannot be cleared");
        goto out;
    }
    if (target_taken(w, cur.target, i)) {
        refuse(err, 400, "target", "A webhook with this target already exists for the app");
        goto out;
    }
    json_t *obj = build(wh->id, app_id, &cur);
    out = obj ? json_deep_copy(obj) : NULL;
    if (!out) {
        json_decref(obj);
        refuse(err, 500, "", "out of memory");
        goto out;
    }
    json_decref(wh->obj);
    wh->obj = obj;
    wh->mask = mask_of(obj);
    update_subscribed(w);
out:
    pthread_mutex_unlock(&w->lock);
    return out;
}

json_t *sim_webhooks_get(struct sim_webhooks *w, const char *id)
{
    pthread_mutex_lock(&w->lock);
    int i = find(w, id);
    json_t *out = i < 0 ? NULL : json_deep_copy(w->items[i].obj);
    pthread_mutex_unlock(&w->lock);
    return out;
}

bool sim_webhooks_delete(struct sim_webhooks *w, const char *id)
{
    pthread_mutex_lock(&w->lock);
    int i = find(w, id);
    if (i >= 0) {
        json_decref(w->items[i].obj);
        memmove(&w->items[i], &w->items[i + 1], (w->n - (size_t)i - 1) * sizeof(w->items[0]));
        w->n--;
        update_subscribed(w);
    }
    pthread_mutex_unlock(&w->lock);
    return i >= 0;
}

json_t *sim_webhooks_list(struct sim_webhooks *w)
{
    json_t *list = json_array();
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; list && i < w->n; i++) {
        json_array_append_new(list, json_deep_copy(w->items[i].obj));
    }
    pthread_mutex_unlock(&w->lock);
    return list;
}

json_t *sim_webhooks_control_json(struct sim_webhooks *w)
{
    return json_pack("{s:o, s:o, s:b}", "webhooks", sim_webhooks_list(w), "webhook_url",
                     w->url ? json_string(w->url) : json_null(), "webhook_url_signed",
                     w->secret != NULL);
}

bool sim_webhooks_subscribed(const struct sim_webhooks *w, enum sim_trigger t)
{
    uint32_t mask = atomic_load_explicit(&w->subscribed, memory_order_relaxed);
    return t < SIM_TRIGGER_COUNT ? (mask & SIM_TRIGGER_BIT(t)) != 0 : w->url != NULL;
}

/* Copies one target into `out`; false when out of memory. */
static bool snapshot(struct sim_target *out, const char *url, const char *secret, const char *id)
{
    out->url = strdup(url);
    out->secret = secret && secret[0] ? strdup(secret) : NULL;
    snprintf(out->webhook_id, sizeof(out->webhook_id), "%s", id);
    if (!out->url || (secret && secret[0] && !out->secret)) {
        sim_target_release(out);
        return false;
    }
    return true;
}

size_t sim_webhooks_targets(struct sim_webhooks *w, enum sim_trigger t, struct sim_target *out)
{
    size_t n = 0;
    if (w->url && snapshot(&out[n], w->url, w->secret, "")) {
        n++;
    }
    if (t >= SIM_TRIGGER_COUNT) {
        return n;
    }
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->n; i++) {
        const struct webhook *wh = &w->items[i];
        if ((wh->mask & SIM_TRIGGER_BIT(t)) &&
            snapshot(&out[n], json_string_value(json_object_get(wh->obj, "target")),
                     json_string_value(json_object_get(wh->obj, "secret")), wh->id)) {
            n++;
        }
    }
    pthread_mutex_unlock(&w->lock);
    return n;
}
