/* Messages and classes of the error codes in include/bridge/err.h, generated from its list. */
#include "bridge/err.h"

const char *sb_strerror(enum sb_err err)
{
    switch (err) {
#define SB_ERR_MSG(name, num, msg)                                                                 \
    case name:                                                                                     \
        return msg;
        SB_ERR_LIST(SB_ERR_MSG)
#undef SB_ERR_MSG
    }
    return "unknown error";
}

const char *sb_err_name(enum sb_err err)
{
    switch (err) {
#define SB_ERR_NAME(name, num, msg)                                                                \
    case name:                                                                                     \
        return #name;
        SB_ERR_LIST(SB_ERR_NAME)
#undef SB_ERR_NAME
    }
    return "SB_E_UNKNOWN";
}

enum sb_err_class sb_err_class(enum sb_err err)
{
    switch (err) {
    case SB_OK:
        return SB_ERR_CLASS_NONE;
    case SB_E_NET:
    case SB_E_TIMEOUT:
    case SB_E_RATE:
    case SB_E_SERVER:
    case SB_E_STORE:
    case SB_E_IO:
    case SB_E_MQTT:
    case SB_E_FULL:
        return SB_ERR_CLASS_RETRY;
    case SB_E_INVAL:
    case SB_E_CONFIG:
    case SB_E_REJECTED:
    case SB_E_AUTH:
    case SB_E_NOTFOUND:
    case SB_E_TLS:
        return SB_ERR_CLASS_PERMANENT;
    case SB_E_NOMEM:
    case SB_E_STOPPED:
    case SB_E_BUG:
        break;
    }
    return SB_ERR_CLASS_BUG;
}
