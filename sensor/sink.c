#define SN_LOG_MOD "sink"
#include "sink.h"

const char *sn_rec_type_name(enum sn_rec_type t)
{
    static const char *const names[] = {"flow", "fingerprint", "stats"};
    return (unsigned)t < SN_REC_TYPE_MAX ? names[t] : "unknown";
}
