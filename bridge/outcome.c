/* Builds the P/sent and P/error payloads (PRODUCT.md "Outcomes", "Errors without an id"). */
#include "bridge/outcome.h"

#include <stdlib.h>
#include <string.h>

static void set_str(json_t *obj, const char *key, const char *value)
{
    if (value) {
        json_object_set_new(obj, key, json_string(value));
    }
}

char *sb_outcome_sent_json(const struct sb_outcome_sent *s)
{
    json_t *o = json_object();
    char *text;

    if (!o) {
        return NULL;
    }
    set_str(o, "id", s->id);
    set_str(o, "message_id", s->message_id);
    set_str(o, "to", s->to);
    set_str(o, "contact_id", s->contact_id);
    set_str(o, "alias", s->alias);
    set_str(o, "channel", s->channel);
    set_str(o, "accepted_time", s->accepted_time);
    json_object_set_new(o, "attempts", json_integer(s->attempts));
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return text;
}

/* Length of the valid UTF-8 sequence at s[0..len), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    unsigned cp;

    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > len) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
        return 0;
    }
    return n;
}

char *sb_utf8_excerpt(const char *s, size_t len, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t take = len < max ? len : max;
    char *out = malloc(take * 3 + 1); /* each byte becomes at most the 3 bytes of U+FFFD */
    size_t o = 0;

    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i < take;) {
        size_t n = u[i] == 0 ? 0 : utf8_seq(u + i, take - i);
        if (n == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, u + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    return out;
}

char *sb_outcome_error_json(const struct sb_outcome_error *e)
{
    json_t *o = json_object();
    json_t *err = json_object();
    char *excerpt = NULL;
    char *text = NULL;

    if (!o || !err) {
        goto out;
    }
    json_object_set_new(o, "id", e->id ? json_string(e->id) : json_null());
    set_str(o, "to", e->to);
    set_str(o, "contact_id", e->contact_id);
    set_str(o, "alias", e->alias);
    set_str(err, "code", e->code);
    set_str(err, "message", e->message);
    if (e->http_status > 0) {
        json_object_set_new(err, "http_status", json_integer(e->http_status));
    }
    if (e->sinch) {
        json_object_set(err, "sinch", e->sinch);
    }
    json_object_set(o, "error", err);
    json_object_set_new(o, "attempts", json_integer(e->attempts));
    if (!e->id) {
        set_str(o, "topic", e->topic);
        excerpt = sb_utf8_excerpt(e->payload ? e->payload : "", e->payload_len, SB_EXCERPT_BYTES);
        if (!excerpt) {
            goto out;
        }
        json_object_set_new(o, "excerpt", json_string(excerpt));
    }
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
    free(excerpt);
    json_decref(err);
    json_decref(o);
    return text;
}
