/* P/bridge/health's payload. Counters are since the process started (Prometheus style, so a
 * consumer computes rates from differences); the depths and "sent_today" come from the store. */
#include "bridge/health.h"

#include <stdio.h>
#include <time.h>

static json_t *count_or_null(int64_t n)
{
    return n < 0 ? json_null() : json_integer((json_int_t)n);
}

static json_t *last_error(const struct sb_outbox_stats *st)
{
    char when[32];
    time_t sec;
    struct tm tm;

    if (st->last_error < 0) {
        return json_null();
    }
    sec = (time_t)(st->last_error_ms / 1000);
    gmtime_r(&sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_pack("{s:s,s:s}", "code",
                     sb_outbox_error_name((enum sb_outbox_error)st->last_error), "time", when);
}

json_t *sb_health_json(const struct sb_health *h)
{
    const struct sb_outbox_stats *st = &h->outbox;
    json_t *failed_by = json_object();

    for (int i = 0; failed_by && i < SB_OUTBOX_ERR_COUNT; i++) {
        if (st->failed_by[i]) {
            json_object_set_new(failed_by, sb_outbox_error_name((enum sb_outbox_error)i),
                                json_integer((json_int_t)st->failed_by[i]));
        }
    }
    return json_pack(
        "{s:I,s:s,s:{s:I,s:s},s:{s:o,s:o},s:{s:I,s:I,s:o,s:I,s:o,s:I,s:o,s:o},s:o}", "uptime_s",
        (json_int_t)h->uptime_s, "mqtt", h->mqtt_up ? "connected" : "disconnected", "sinch",
        "last_status", (json_int_t)h->sinch_last_status, "token",
        !h->oauth        ? "basic"
        : h->token_valid ? "valid"
                         : "none",
        "store", "outbox_depth", count_or_null(h->outbox_depth), "inbox_depth",
        count_or_null(h->inbox_depth), "counters", "received", (json_int_t)st->received, "sent",
        (json_int_t)st->sent, "sent_today", count_or_null(h->sent_today), "failed",
        (json_int_t)st->failed, "failed_by", failed_by, "retried", (json_int_t)st->retried,
        "queued", count_or_null(h->outbox_depth), "webhooks",
        h->webhooks ? json_incref(h->webhooks) : json_object(), "last_error", last_error(st));
}
