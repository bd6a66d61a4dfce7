/* The strict messages:send validator. Each check_* function looks at one object of the request
 * while `path` names where it is ("message.choice_message.choices[2]"); the first violation
 * found ends the walk. Unknown keys are refused where our doc lists every field of the object
 * (the envelope, recipient, the message and its simpler contents); elsewhere only the fields
 * Sinch requires are checked, so that we never refuse what Sinch would take. */
#include "sim_validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define METADATA_MAX_CHARS      1024 /* message_metadata, fact 3.6 */
#define CONV_METADATA_MAX_CHARS 2048 /* conversation_metadata serialised */
#define CORRELATION_MAX_CHARS   128
#define PROPERTY_MAX_CHARS      1024 /* each channel_properties value */
#define CHOICES_MAX             10
#define CAROUSEL_CARDS_MAX      10
#define CAROUSEL_CHOICES_MAX    3
#define LIST_CHOICES_MAX        10
#define TTL_MIN                 3ULL
#define TTL_MAX                 315576000000ULL

struct vctx {
    const struct sim_app *app;
    struct sim_verdict *v;
    char path[SIM_FIELD_MAX];
    size_t len;
};

typedef bool (*check_fn)(struct vctx *c, json_t *val);

static const char *const known_channels[] = {
    "WHATSAPP", "RCS",       "SMS",           "MESSENGER", "VIBERBM", "MMS",     "INSTAGRAM",
    "TELEGRAM", "KAKAOTALK", "KAKAOTALKCHAT", "LINE",      "WECHAT",  "APPLEBC",
};

static const char *const envelope_keys[] = {
    "app_id",
    "recipient",
    "message",
    "channel_priority_order",
    "channel_properties",
    "message_metadata",
    "conversation_metadata",
    "conversation_metadata_update_strategy",
    "correlation_id",
    "callback_url",
    "queue",
    "processing_strategy",
    "ttl",
    "message_content_type",
};

bool sim_validate_channel_known(const char *name)
{
    for (size_t i = 0; i < N(known_channels); i++) {
        if (strcmp(name, known_channels[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- the path and the verdict ---- */

static void append(struct vctx *c, const char *s)
{
    size_t n = strlen(s);
    if (c->len + n >= sizeof(c->path)) {
        n = sizeof(c->path) - 1 - c->len;
    }
    memcpy(c->path + c->len, s, n);
    c->len += n;
    c->path[c->len] = '\0';
}

static size_t push_key(struct vctx *c, const char *key)
{
    size_t mark = c->len;
    if (c->len > 0) {
        append(c, ".");
    }
    append(c, key);
    return mark;
}

static size_t push_index(struct vctx *c, size_t i)
{
    char b[24];
    size_t mark = c->len;
    snprintf(b, sizeof(b), "[%zu]", i);
    append(c, b);
    return mark;
}

static void pop(struct vctx *c, size_t mark)
{
    c->len = mark;
    c->path[mark] = '\0';
}

/* Cuts a UTF-8 sequence that snprintf left incomplete at the end of `s`, so the text stays
 * valid for jansson. */
static void utf8_trim(char *s)
{
    size_t n = strlen(s), start = n;
    while (start > 0 && ((unsigned char)s[start - 1] & 0xC0) == 0x80) {
        start--;
    }
    if (start == 0 || ((unsigned char)s[start - 1] & 0x80) == 0) {
        return; /* ends in ASCII, or nothing but continuation bytes to look at */
    }
    unsigned char lead = (unsigned char)s[start - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (n - (start - 1) < want) {
        s[start - 1] = '\0';
    }
}

/* Records the violation at path(.key). */
static void violation(struct vctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void violation(struct vctx *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    size_t mark = key ? push_key(c, key) : c->len;
    snprintf(c->v->field, sizeof(c->v->field), "%s", c->path);
    pop(c, mark);
    va_start(ap, fmt);
    vsnprintf(c->v->description, sizeof(c->v->description), fmt, ap);
    va_end(ap);
    utf8_trim(c->v->field);
    utf8_trim(c->v->description);
    c->v->status = 400;
}

/* violation(), as the false that ends a check: `return FAIL(...)`, `ok || FAIL(...)`. A macro,
 * so that clang's analyzer sees the false: it does not follow a call into a variadic function,
 * so with a function it took `return FAIL(...)` for a possible true, and then a string that
 * req_str() never set for one it had. */
#define FAIL(c, key, ...) (violation((c), (key), __VA_ARGS__), false)

/* ---- small checks ---- */

/* A value that is JSON null counts as absent, as in protobuf's JSON mapping. */
static json_t *get(json_t *obj, const char *key)
{
    json_t *val = json_object_get(obj, key);
    return json_is_null(val) ? NULL : val;
}

static size_t utf8_chars(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

static bool one_of(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, list[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool only_keys(struct vctx *c, json_t *obj, const char *const *keys, size_t n)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        if (!one_of(key, keys, n)) {
            return FAIL(c, key,
                        "Unknown field: a client must not send fields Sinch does not define");
        }
    }
    return true;
}

static bool is_object(struct vctx *c, json_t *val)
{
    return json_is_object(val) || FAIL(c, NULL, "must be a JSON object");
}

/* Required: present, a string, not empty (an empty string is proto3's "not set"). */
static bool req_str(struct vctx *c, json_t *obj, const char *key, const char **out)
{
    json_t *val = get(obj, key);
    if (!val) {
        return FAIL(c, key, "Field is mandatory");
    }
    if (!json_is_string(val)) {
        return FAIL(c, key, "must be a string");
    }
    if (json_string_length(val) == 0) {
        return FAIL(c, key, "Field is mandatory (empty string)");
    }
    if (out) {
        *out = json_string_value(val);
    }
    return true;
}

/* Optional string of at most `max_chars` characters (0: no limit). */
static bool opt_str(struct vctx *c, json_t *obj, const char *key, size_t max_chars)
{
    json_t *val = get(obj, key);
    if (!val) {
        return true;
    }
    if (!json_is_string(val)) {
        return FAIL(c, key, "must be a string");
    }
    if (max_chars && utf8_chars(json_string_value(val), json_string_length(val)) > max_chars) {
        return FAIL(c, key, "longer than %zu characters", max_chars);
    }
    return true;
}

/* Writes "a, b, c" into buf. */
static const char *join(const char *const *list, size_t n, char *buf, size_t len)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && pos < len; i++) {
        int w = snprintf(buf + pos, len - pos, "%s%s", i ? ", " : "", list[i]);
        pos += w > 0 ? (size_t)w : 0;
    }
    return buf;
}

static bool opt_enum(struct vctx *c, json_t *obj, const char *key, const char *const *values,
                     size_t n)
{
    json_t *val = get(obj, key);
    if (!val) {
        return true;
    }
    if (!json_is_string(val) || !one_of(json_string_value(val), values, n)) {
        char list[256];
        return FAIL(c, key, "invalid value: must be one of %s",
                    join(values, n, list, sizeof(list)));
    }
    return true;
}

static bool is_url(const char *s)
{
    return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

static bool req_url(struct vctx *c, json_t *obj, const char *key)
{
    const char *s = NULL;
    if (!req_str(c, obj, key, &s)) {
        return false;
    }
    return is_url(s) || FAIL(c, key, "must be an http:// or https:// URL");
}

/* Runs `fn` on obj[key] with the path extended by key; absent is fine unless `required`. */
static bool sub(struct vctx *c, json_t *obj, const char *key, bool required, check_fn fn)
{
    json_t *val = get(obj, key);
    if (!val) {
        return !required || FAIL(c, key, "Field is mandatory");
    }
    size_t mark = push_key(c, key);
    bool ok = fn(c, val);
    pop(c, mark);
    return ok;
}

/* obj[key] must be an array of min..max items, each passing `fn`. */
static bool sub_array(struct vctx *c, json_t *obj, const char *key, size_t min, size_t max,
                      check_fn fn)
{
    json_t *arr = get(obj, key);
    if (!arr) {
        return min == 0 || FAIL(c, key, "Field is mandatory");
    }
    if (!json_is_array(arr)) {
        return FAIL(c, key, "must be an array");
    }
    size_t n = json_array_size(arr);
    if (n < min) {
        return FAIL(c, key, "needs at least %zu item%s", min, min == 1 ? "" : "s");
    }
    if (max && n > max) {
        return FAIL(c, key, "has %zu items, at most %zu allowed", n, max);
    }
    size_t mark = push_key(c, key);
    for (size_t i = 0; i < n; i++) {
        size_t item = push_index(c, i);
        bool ok = fn(c, json_array_get(arr, i));
        pop(c, item);
        if (!ok) {
            pop(c, mark);
            return false;
        }
    }
    pop(c, mark);
    return true;
}

/* Exactly one of keys[] is set on obj; its index goes to *which. */
static bool exactly_one(struct vctx *c, json_t *obj, const char *const *keys, size_t n,
                        size_t *which)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if (get(obj, keys[i])) {
            *which = i;
            found++;
        }
    }
    if (found == 1) {
        return true;
    }
    char list[512];
    return FAIL(c, NULL, "exactly one of %s must be set (found %zu)",
                join(keys, n, list, sizeof(list)), found);
}

/* A map from channel name to a value of the given JSON type. */
static bool channel_map(struct vctx *c, json_t *val, json_type type, const char *type_name)
{
    const char *key;
    json_t *item;
    if (!is_object(c, val)) {
        return false;
    }
    json_object_foreach(val, key, item)
    {
        if (!sim_validate_channel_known(key)) {
            return FAIL(c, key, "not a channel name");
        }
        if (json_typeof(item) != type) {
            return FAIL(c, key, "must be %s", type_name);
        }
    }
    return true;
}

/* ---- the message contents (fact 3.3) ---- */

static bool check_text(struct vctx *c, json_t *val)
{
    static const char *const keys[] = {"text"};
    return is_object(c, val) && only_keys(c, val, keys, N(keys)) && req_str(c, val, "text", NULL);
}

static bool check_media(struct vctx *c, json_t *val)
{
    static const char *const keys[] = {"url", "thumbnail_url", "filename_override"};
    return is_object(c, val) && only_keys(c, val, keys, N(keys)) && req_url(c, val, "url") &&
           opt_str(c, val, "thumbnail_url", 0) && opt_str(c, val, "filename_override", 0);
}

static bool check_coordinates(struct vctx *c, json_t *val)
{
    static const char *const keys[] = {"latitude", "longitude"};
    static const double limit[] = {90.0, 180.0};
    if (!is_object(c, val) || !only_keys(c, val, keys, N(keys))) {
        return false;
    }
    for (size_t i = 0; i < N(keys); i++) {
        json_t *num = get(val, keys[i]);
        if (!num) {
            return FAIL(c, keys[i], "Field is mandatory");
        }
        if (!json_is_number(num)) {
            return FAIL(c, keys[i], "must be a number");
        }
        double d = json_number_value(num);
        if (d < -limit[i] || d > limit[i]) {
            return FAIL(c, keys[i], "out of range -%g..%g", limit[i], limit[i]);
        }
    }
    return true;
}

static bool check_location(struct vctx *c, json_t *val)
{
    static const char *const keys[] = {"coordinates", "title", "label"};
    return is_object(c, val) && only_keys(c, val, keys, N(keys)) &&
           sub(c, val, "coordinates", true, check_coordinates) && req_str(c, val, "title", NULL) &&
           opt_str(c, val, "label", 0);
}

static bool check_url_choice(struct vctx *c, json_t *val)
{
    return is_object(c, val) && req_str(c, val, "title", NULL) && req_url(c, val, "url");
}

static bool check_call_choice(struct vctx *c, json_t *val)
{
    return is_object(c, val) && req_str(c, val, "title", NULL) &&
           req_str(c, val, "phone_number", NULL);
}

static bool check_calendar_choice(struct vctx *c, json_t *val)
{
    static const char *const required[] = {"title", "event_start", "event_end", "event_title",
                                           "fallback_url"};
    if (!is_object(c, val)) {
        return false;
    }
    for (size_t i = 0; i < N(required); i++) {
        if (!req_str(c, val, required[i], NULL)) {
            return false;
        }
    }
    return opt_str(c, val, "event_description", 0);
}

static bool check_share_location_choice(struct vctx *c, json_t *val)
{
    return is_object(c, val) && req_str(c, val, "title", NULL) &&
           req_str(c, val, "fallback_url", NULL);
}

static bool check_choice(struct vctx *c, json_t *val)
{
    static const char *const kinds[] = {"text_message",     "url_message",
                                        "call_message",     "location_message",
                                        "calendar_message", "share_location_message"};
    static const check_fn checks[] = {
        check_text,     check_url_choice,      check_call_choice,
        check_location, check_calendar_choice, check_share_location_choice};
    static const char *const keys[] = {"text_message",     "url_message",
                                       "call_message",     "location_message",
                                       "calendar_message", "share_location_message",
                                       "postback_data"};
    size_t which = 0;
    if (!is_object(c, val) || !only_keys(c, val, keys, N(keys)) ||
        !exactly_one(c, val, kinds, N(kinds), &which)) {
        return false;
    }
    return sub(c, val, kinds[which], true, checks[which]) && opt_str(c, val, "postback_data", 0);
}

static bool check_choice_message(struct vctx *c, json_t *val)
{
    static const char *const keys[] = {"text_message", "choices", "message_properties"};
    return is_object(c, val) && only_keys(c, val, keys, N(keys)) &&
           sub(c, val, "text_message", false, check_text) &&
           sub_array(c, val, "choices", 1, CHOICES_MAX, check_choice) &&
           sub(c, val, "message_properties", false, is_object);
}

static bool check_card(struct vctx *c, json_t *val)
{
    return is_object(c, val) && opt_str(c, val, "title", 0) && opt_str(c, val, "description", 0) &&
           sub(c, val, "media_message", false, check_media) &&
           sub_array(c, val, "choices", 0, CHOICES_MAX, check_choice);
}

static bool check_carousel(struct vctx *c, json_t *val)
{
    return is_object(c, val) && sub_array(c, val, "cards", 1, CAROUSEL_CARDS_MAX, check_card) &&
           sub_array(c, val, "choices", 0, CAROUSEL_CHOICES_MAX, check_choice);
}

static bool check_list_choice(struct vctx *c, json_t *val)
{
    return is_object(c, val) && req_str(c, val, "title", NULL) &&
           opt_str(c, val, "description", 0) && opt_str(c, val, "postback_data", 0);
}

static bool check_list_product(struct vctx *c, json_t *val)
{
    return is_object(c, val) && req_str(c, val, "id", NULL);
}

static bool check_list_item(struct vctx *c, json_t *val)
{
    static const char *const kinds[] = {"choice", "product"};
    static const check_fn checks[] = {check_list_choice, check_list_product};
    size_t which = 0;
    return is_object(c, val) && exactly_one(c, val, kinds, N(kinds), &which) &&
           sub(c, val, kinds[which], true, checks[which]);
}

static bool check_list_section(struct vctx *c, json_t *val)
{
    return is_object(c, val) && opt_str(c, val, "title", 0) &&
           sub_array(c, val, "items", 1, 0, check_list_item);
}

static bool check_list(struct vctx *c, json_t *val)
{
    if (!is_object(c, val) || !req_str(c, val, "title", NULL) ||
        !opt_str(c, val, "description", 0) ||
        !sub_array(c, val, "sections", 1, 0, check_list_section)) {
        return false;
    }
    size_t choices = 0, i, j;
    json_t *section, *item;
    json_array_foreach(get(val, "sections"), i, section)
    {
        json_array_foreach(get(section, "items"), j, item)
        {
            choices += get(item, "choice") != NULL;
        }
    }
    if (choices > LIST_CHOICES_MAX) {
        return FAIL(c, "sections", "has %zu choices, at most %d allowed", choices,
                    LIST_CHOICES_MAX);
    }
    return true;
}

static bool check_phone_number(struct vctx *c, json_t *val)
{
    return is_object(c, val) && req_str(c, val, "phone_number", NULL);
}

static bool check_contact_name(struct vctx *c, json_t *val)
{
    return is_object(c, val) && req_str(c, val, "full_name", NULL);
}

static bool check_contact_info(struct vctx *c, json_t *val)
{
    return is_object(c, val) && sub(c, val, "name", true, check_contact_name) &&
           sub_array(c, val, "phone_numbers", 1, 0, check_phone_number);
}

/* TemplateReference: `version` is required in an omni template only; a WhatsApp channel template
 * needs language_code in Meta's underscore form (en_US), never BCP-47's en-US. */
static bool template_ref(struct vctx *c, json_t *val, bool omni, bool whatsapp)
{
    static const char *const keys[] = {"template_id", "version", "language_code", "parameters"};
    const char *key;
    json_t *param;
    if (!is_object(c, val) || !only_keys(c, val, keys, N(keys)) ||
        !req_str(c, val, "template_id", NULL)) {
        return false;
    }
    if (omni ? !req_str(c, val, "version", NULL) : !opt_str(c, val, "version", 0)) {
        return false;
    }
    if (whatsapp) {
        const char *lang = NULL;
        if (!req_str(c, val, "language_code", &lang)) {
            return false;
        }
        if (strchr(lang, '-')) {
            return FAIL(c, "language_code",
                        "WhatsApp templates take the underscore form (en_US), not \"%s\"", lang);
        }
    } else if (!opt_str(c, val, "language_code", 0)) {
        return false;
    }
    json_t *params = get(val, "parameters");
    if (!params) {
        return true;
    }
    if (!json_is_object(params)) {
        return FAIL(c, "parameters", "must be an object of strings");
    }
    size_t mark = push_key(c, "parameters");
    json_object_foreach(params, key, param)
    {
        if (!json_is_string(param)) {
            violation(c, key, "must be a string");
            pop(c, mark);
            return false;
        }
    }
    pop(c, mark);
    return true;
}

static bool check_omni_template(struct vctx *c, json_t *val)
{
    return template_ref(c, val, true, false);
}

static bool check_channel_template(struct vctx *c, json_t *val)
{
    const char *channel;
    json_t *ref;
    if (!is_object(c, val)) {
        return false;
    }
    json_object_foreach(val, channel, ref)
    {
        if (!sim_validate_channel_known(channel)) {
            return FAIL(c, channel, "not a channel name");
        }
        size_t mark = push_key(c, channel);
        bool ok = template_ref(c, ref, false, strcmp(channel, "WHATSAPP") == 0);
        pop(c, mark);
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool check_template(struct vctx *c, json_t *val)
{
    static const char *const keys[] = {"omni_template", "channel_template"};
    if (!is_object(c, val) || !only_keys(c, val, keys, N(keys))) {
        return false;
    }
    json_t *channel = get(val, "channel_template");
    if (!get(val, "omni_template") && (!channel || json_object_size(channel) == 0)) {
        return FAIL(c, NULL, "needs omni_template or channel_template");
    }
    return sub(c, val, "omni_template", false, check_omni_template) &&
           sub(c, val, "channel_template", false, check_channel_template);
}

static bool check_explicit_channel_message(struct vctx *c, json_t *val)
{
    return channel_map(c, val, JSON_STRING, "a string holding the channel's own JSON");
}

static bool check_channel_objects(struct vctx *c, json_t *val)
{
    return channel_map(c, val, JSON_OBJECT, "an object");
}

static bool check_message(struct vctx *c, json_t *val)
{
    static const char *const contents[] = {
        "text_message",     "media_message", "template_message",
        "choice_message",   "card_message",  "carousel_message",
        "location_message", "list_message",  "contact_info_message",
    };
    static const check_fn checks[] = {
        check_text,     check_media,    check_template, check_choice_message, check_card,
        check_carousel, check_location, check_list,     check_contact_info,
    };
    static const char *const keys[] = {
        "text_message",
        "media_message",
        "template_message",
        "choice_message",
        "card_message",
        "carousel_message",
        "location_message",
        "list_message",
        "contact_info_message",
        "explicit_channel_message",
        "explicit_channel_omni_message",
        "channel_specific_message",
        "agent",
    };
    size_t which = 0;
    if (!is_object(c, val) || !only_keys(c, val, keys, N(keys)) ||
        !exactly_one(c, val, contents, N(contents), &which)) {
        return false;
    }
    return sub(c, val, contents[which], true, checks[which]) &&
           sub(c, val, "explicit_channel_message", false, check_explicit_channel_message) &&
           sub(c, val, "explicit_channel_omni_message", false, check_channel_objects) &&
           sub(c, val, "channel_specific_message", false, check_channel_objects) &&
           sub(c, val, "agent", false, is_object);
}

/* ---- the recipient (fact 3.2) ---- */

static bool check_identity(struct vctx *c, json_t *val)
{
    static const char *const keys[] = {"channel", "identity", "app_id"};
    const char *channel = NULL;
    if (!is_object(c, val) || !only_keys(c, val, keys, N(keys)) ||
        !req_str(c, val, "channel", &channel)) {
        return false;
    }
    if (!sim_validate_channel_known(channel)) {
        return FAIL(c, "channel", "unknown channel \"%s\"", channel);
    }
    return req_str(c, val, "identity", NULL) && opt_str(c, val, "app_id", 0);
}

static bool check_identified_by(struct vctx *c, json_t *val)
{
    static const char *const keys[] = {"channel_identities"};
    return is_object(c, val) && only_keys(c, val, keys, N(keys)) &&
           sub_array(c, val, "channel_identities", 1, 0, check_identity);
}

static bool check_contact_id(struct vctx *c, json_t *val)
{
    return (json_is_string(val) && json_string_length(val) > 0) ||
           FAIL(c, NULL, "must be a non-empty string");
}

static bool check_recipient(struct vctx *c, json_t *val)
{
    static const char *const keys[] = {"contact_id", "identified_by"};
    size_t which = 0;
    if (!is_object(c, val) || !only_keys(c, val, keys, N(keys)) ||
        !exactly_one(c, val, keys, N(keys), &which)) {
        return false;
    }
    return which == 0 ? sub(c, val, "contact_id", true, check_contact_id)
                      : sub(c, val, "identified_by", true, check_identified_by);
}

/* ---- the rest of the envelope (facts 3.1 and 3.6) ---- */

static bool check_priority_channel(struct vctx *c, json_t *val)
{
    if (!json_is_string(val)) {
        return FAIL(c, NULL, "must be a channel name");
    }
    return sim_validate_channel_known(json_string_value(val)) ||
           FAIL(c, NULL, "unknown channel \"%s\"", json_string_value(val));
}

static bool check_channel_properties(struct vctx *c, json_t *val)
{
    const char *key;
    json_t *prop;
    if (!is_object(c, val)) {
        return false;
    }
    json_object_foreach(val, key, prop)
    {
        if (!json_is_string(prop)) {
            return FAIL(c, key, "must be a string (even for booleans and numbers)");
        }
        if (utf8_chars(json_string_value(prop), json_string_length(prop)) > PROPERTY_MAX_CHARS) {
            return FAIL(c, key, "longer than %d characters", PROPERTY_MAX_CHARS);
        }
    }
    return true;
}

static bool check_conversation_metadata(struct vctx *c, json_t *val)
{
    if (!json_is_object(val)) {
        return FAIL(c, NULL, "must be a JSON object");
    }
    char *text = json_dumps(val, JSON_COMPACT);
    size_t chars = text ? utf8_chars(text, strlen(text)) : 0;
    free(text);
    if (chars > CONV_METADATA_MAX_CHARS) {
        return FAIL(c, NULL, "serialises to %zu characters, at most %d allowed", chars,
                    CONV_METADATA_MAX_CHARS);
    }
    return true;
}

/* ttl is a protobuf Duration in JSON: a string "<seconds>s", 3..315576000000 s. */
static bool check_ttl(struct vctx *c, json_t *val)
{
    if (!json_is_string(val)) {
        return FAIL(c, NULL, "must be a string like \"86400s\"");
    }
    const char *s = json_string_value(val);
    size_t n = json_string_length(val);
    if (n < 2 || s[n - 1] != 's') {
        return FAIL(c, NULL, "must match ^[0-9]+s$, got \"%s\"", s);
    }
    unsigned long long secs = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return FAIL(c, NULL, "must match ^[0-9]+s$, got \"%s\"", s);
        }
        if (secs <= TTL_MAX) {
            secs = secs * 10 + (unsigned long long)(s[i] - '0');
        }
    }
    if (secs < TTL_MIN || secs > TTL_MAX) {
        return FAIL(c, NULL, "out of range %llu..%llu seconds", TTL_MIN, TTL_MAX);
    }
    return true;
}

static bool check_callback_url(struct vctx *c, json_t *val)
{
    return (json_is_string(val) && is_url(json_string_value(val))) ||
           FAIL(c, NULL, "must be an http:// or https:// URL");
}

static bool check_envelope_options(struct vctx *c, json_t *body)
{
    static const char *const strategies[] = {"REPLACE", "MERGE_PATCH"};
    static const char *const queues[] = {"NORMAL_PRIORITY", "HIGH_PRIORITY"};
    static const char *const processing[] = {"DEFAULT", "DISPATCH_ONLY"};
    static const char *const content_types[] = {"CONTENT_UNKNOWN", "CONTENT_MARKETING",
                                                "CONTENT_NOTIFICATION"};
    return sub_array(c, body, "channel_priority_order", 0, 0, check_priority_channel) &&
           sub(c, body, "channel_properties", false, check_channel_properties) &&
           opt_str(c, body, "message_metadata", METADATA_MAX_CHARS) &&
           sub(c, body, "conversation_metadata", false, check_conversation_metadata) &&
           opt_enum(c, body, "conversation_metadata_update_strategy", strategies, N(strategies)) &&
           opt_str(c, body, "correlation_id", CORRELATION_MAX_CHARS) &&
           sub(c, body, "callback_url", false, check_callback_url) &&
           opt_enum(c, body, "queue", queues, N(queues)) &&
           opt_enum(c, body, "processing_strategy", processing, N(processing)) &&
           sub(c, body, "ttl", false, check_ttl) &&
           opt_enum(c, body, "message_content_type", content_types, N(content_types));
}

/* Checks that need the app: it must be ours (else 404, as for any unknown app), and every
 * channel of channel_priority_order must be configured in it. */
static bool check_against_app(struct vctx *c, json_t *body, const char *app_id)
{
    if (strcmp(app_id, c->app->app_id) != 0) {
        violation(c, "app_id", "app %s not found in this project", app_id);
        c->v->status = 404;
        return false;
    }
    json_t *order = get(body, "channel_priority_order");
    json_t *channel;
    size_t i;
    json_array_foreach(order, i, channel)
    {
        if (!one_of(json_string_value(channel), c->app->channels, c->app->n_channels)) {
            size_t mark = push_key(c, "channel_priority_order");
            push_index(c, i);
            violation(c, NULL, "channel %s is not configured in app %s", json_string_value(channel),
                      app_id);
            pop(c, mark);
            return false;
        }
    }
    return true;
}

int sim_validate_send(json_t *body, const struct sim_app *app, struct sim_verdict *v)
{
    struct vctx c = {.app = app, .v = v};
    const char *app_id = NULL;

    v->status = 200;
    v->field[0] = '\0';
    v->description[0] = '\0';
    if (!json_is_object(body)) {
        violation(&c, NULL, "the request body must be a JSON object");
    } else if (only_keys(&c, body, envelope_keys, N(envelope_keys)) &&
               req_str(&c, body, "app_id", &app_id) &&
               sub(&c, body, "recipient", true, check_recipient) &&
               sub(&c, body, "message", true, check_message) && check_envelope_options(&c, body)) {
        check_against_app(&c, body, app_id);
    }
    return v->status;
}

int sim_validate_send_text(const char *text, size_t len, const struct sim_app *app,
                           struct sim_verdict *v)
{
    json_error_t err;
    json_t *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!body) {
        struct vctx c = {.app = app, .v = v};
        violation(&c, NULL, "Invalid JSON payload received: %s (at byte %d)", err.text,
                  err.position);
        return v->status;
    }
    int status = sim_validate_send(body, app, v);
    json_decref(body);
    return status;
}
