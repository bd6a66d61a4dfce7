/* Report plans and report bodies. A plan is one malloc: the struct, then its strings packed
 * behind it, so the send path allocates once and the delivery thread frees once. */
#include "sim_reports.h"

#include <stdlib.h>
#include <string.h>

/* The default reason of a failure: the 24-hour window on WhatsApp (fact 10.5, with Meta's error
 * code), an unreachable recipient elsewhere. */
#define WA_REASON                                                                                  \
    "{\"code\":\"OUTSIDE_ALLOWED_SENDING_WINDOW\",\"description\":\"The underlying channel "       \
    "reported: more than 24 hours have passed since the customer last replied\","                  \
    "\"sub_code\":\"UNSPECIFIED_SUB_CODE\",\"channel_code\":\"131047\"}"
#define OTHER_REASON                                                                               \
    "{\"code\":\"RECIPIENT_NOT_REACHABLE\",\"description\":\"The underlying channel reported: "    \
    "the recipient is not reachable\",\"sub_code\":\"UNSPECIFIED_SUB_CODE\"}"

static const char *str_or_empty(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

/* The identity the send gave for `channel`, else its first one, else "". */
static const char *identity_for(json_t *identities, const char *channel)
{
    size_t i;
    json_t *ci;
    json_array_foreach(identities, i, ci)
    {
        if (strcmp(str_or_empty(json_object_get(ci, "channel")), channel) == 0) {
            return str_or_empty(json_object_get(ci, "identity"));
        }
    }
    return str_or_empty(json_object_get(json_array_get(identities, 0), "identity"));
}

/* True when the send named `channel`, in channel_priority_order or among its identities. */
static bool names_channel(json_t *order, json_t *identities, const char *channel)
{
    size_t i;
    json_t *v;
    json_array_foreach(order, i, v)
    {
        if (strcmp(str_or_empty(v), channel) == 0) {
            return true;
        }
    }
    json_array_foreach(identities, i, v)
    {
        if (strcmp(str_or_empty(json_object_get(v, "channel")), channel) == 0) {
            return true;
        }
    }
    return false;
}

/* Copies `s` to *pos and returns the copy; *pos moves past its NUL. */
static const char *pack(char **pos, const char *s)
{
    size_t n = strlen(s) + 1;
    char *dst = *pos;
    memcpy(dst, s, n);
    *pos += n;
    return dst;
}

struct sim_report_plan *sim_report_plan_new(json_t *body, const char *message_id,
                                            const struct sim_delivery_mode *mode,
                                            const char *default_channel)
{
    json_t *recipient = json_object_get(body, "recipient");
    json_t *identities =
        json_object_get(json_object_get(recipient, "identified_by"), "channel_identities");
    json_t *order = json_object_get(body, "channel_priority_order");
    const char *contact_id = str_or_empty(json_object_get(recipient, "contact_id"));
    const char *channel = str_or_empty(json_array_get(order, 0));
    if (!channel[0]) {
        channel = str_or_empty(json_object_get(json_array_get(identities, 0), "channel"));
    }
    if (!channel[0]) {
        channel = default_channel;
    }
    const char *identity = contact_id[0] ? "" : identity_for(identities, channel);
    const char *metadata = str_or_empty(json_object_get(body, "message_metadata"));
    const char *correlation_id = str_or_empty(json_object_get(body, "correlation_id"));
    bool failed = mode->mode == SIM_REPORTS_FAILED;
    const char *next = failed && mode->switch_to[0] && strcmp(mode->switch_to, channel) != 0 &&
                               names_channel(order, identities, mode->switch_to)
                           ? mode->switch_to
                           : NULL;
    const char *next_identity = next && !contact_id[0] ? identity_for(identities, next) : "";
    const char *reason = failed ? mode->reason : NULL;

    size_t need = strlen(channel) + strlen(identity) + strlen(contact_id) + strlen(metadata) +
                  strlen(correlation_id) + (next ? strlen(next) + strlen(next_identity) : 0) +
                  (reason ? strlen(reason) : 0) + 8;
    struct sim_report_plan *p = malloc(sizeof(*p) + need);
    if (!p) {
        return NULL;
    }
    char *pos = (char *)(p + 1);
    memset(p, 0, sizeof(*p));
    memcpy(p->message_id, message_id, sizeof(p->message_id));
    p->message_id[SIM_ULID_LEN] = '\0';
    p->failed = failed;
    p->channel = pack(&pos, channel);
    p->identity = pack(&pos, identity);
    p->contact_id = pack(&pos, contact_id);
    p->metadata = pack(&pos, metadata);
    p->correlation_id = pack(&pos, correlation_id);
    if (next) {
        p->next_channel = pack(&pos, next);
        p->next_identity = pack(&pos, next_identity);
    }
    p->reason = reason ? pack(&pos, reason) : NULL;
    return p;
}

bool sim_report_step(const struct sim_report_plan *p, unsigned step, struct sim_report_step *out)
{
    static const char *const normal[] = {"QUEUED_ON_CHANNEL", "DELIVERED", "READ"};
    static const char *const failed[] = {"QUEUED_ON_CHANNEL", "FAILED"};
    static const char *const switched[] = {"QUEUED_ON_CHANNEL", "SWITCHING_CHANNEL",
                                           "QUEUED_ON_CHANNEL", "DELIVERED"};
    const char *const *seq = !p->failed ? normal : p->next_channel ? switched : failed;
    unsigned n = !p->failed ? 3 : p->next_channel ? 4 : 2;
    if (step >= n) {
        return false;
    }
    bool on_next = p->next_channel && step >= 2;
    out->status = seq[step];
    out->channel = on_next ? p->next_channel : p->channel;
    out->identity = on_next ? p->next_identity : p->identity;
    out->with_reason = p->failed && step == 1;
    return true;
}

json_t *sim_report_body(const struct sim_report_plan *p, unsigned step,
                        const struct sim_cb_context *ctx)
{
    struct sim_report_step st;
    if (!sim_report_step(p, step, &st)) {
        return NULL;
    }
    json_t *report =
        json_pack("{s:s, s:s, s:s, s:o, s:s}", "message_id", p->message_id, "conversation_id", "",
                  "status", st.status, "channel_identity", sim_cb_identity(st.channel, st.identity),
                  "contact_id", p->contact_id);
    if (report && st.with_reason) {
        const char *text = p->reason                             ? p->reason
                           : strcmp(st.channel, "WHATSAPP") == 0 ? WA_REASON
                                                                 : OTHER_REASON;
        json_t *reason = json_loads(text, 0, NULL);
        json_object_set_new(report, "reason", reason ? reason : json_object());
    }
    if (report) {
        json_object_set_new(report, "metadata", json_string(p->metadata));
        json_object_set_new(report, "processing_mode", json_string("DISPATCH"));
    }
    return report ? sim_cb_envelope(ctx, "message_delivery_report", report, true, p->correlation_id)
                  : NULL;
}
