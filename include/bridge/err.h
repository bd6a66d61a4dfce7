/* Error codes of sinch-bridge: one list, so the code, its name and its message cannot drift.
 * Codes have explicit numbers and are never reused. sb_err_class() sorts them for the outbox. */
#ifndef SB_BRIDGE_ERR_H
#define SB_BRIDGE_ERR_H

#define SB_MUST_CHECK __attribute__((warn_unused_result))

/* X(name, number, message) */
#define SB_ERR_LIST(X)                                                                             \
    X(SB_OK, 0, "ok")                                                                              \
    X(SB_E_NOMEM, 1, "out of memory")                                                              \
    X(SB_E_INVAL, 2, "invalid input")                                                              \
    X(SB_E_CONFIG, 3, "invalid configuration")                                                     \
    X(SB_E_IO, 4, "I/O error")                                                                     \
    X(SB_E_STORE, 5, "store error")                                                                \
    X(SB_E_NET, 6, "network error")                                                                \
    X(SB_E_TIMEOUT, 7, "timed out")                                                                \
    X(SB_E_RATE, 8, "rate limited")                                                                \
    X(SB_E_SERVER, 9, "server error")                                                              \
    X(SB_E_REJECTED, 10, "rejected")                                                               \
    X(SB_E_AUTH, 11, "authentication failed")                                                      \
    X(SB_E_MQTT, 12, "MQTT error")                                                                 \
    X(SB_E_TLS, 13, "TLS error")                                                                   \
    X(SB_E_NOTFOUND, 14, "not found")                                                              \
    X(SB_E_FULL, 15, "queue full")                                                                 \
    X(SB_E_STOPPED, 16, "stopped")                                                                 \
    X(SB_E_BUG, 17, "internal error")

enum sb_err {
/* NOLINTNEXTLINE(bugprone-macro-parentheses): `name` is an enumerator, not an expression */
#define SB_ERR_ENUM(name, num, msg) name = num,
    SB_ERR_LIST(SB_ERR_ENUM)
#undef SB_ERR_ENUM
};

enum sb_err_class {
    SB_ERR_CLASS_NONE,      /* SB_OK */
    SB_ERR_CLASS_RETRY,     /* network, timeout, 5xx, 429: try again later */
    SB_ERR_CLASS_PERMANENT, /* bad input, 4xx, auth: report, do not retry */
    SB_ERR_CLASS_BUG,       /* should not happen: log at error level */
};

/* Thread: any. Returns a static string. */
const char *sb_strerror(enum sb_err err);
/* Thread: any. Returns the code's name, e.g. "SB_E_NET". */
const char *sb_err_name(enum sb_err err);
/* Thread: any. */
enum sb_err_class sb_err_class(enum sb_err err);

#endif
