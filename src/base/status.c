#include "base/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fg_status {
    fg_code code;
    int is_static;
    char message[1024];
};

static fg_status out_of_memory_status = {FG_ERR_OUT_OF_MEMORY, 1,
                                         "out of host memory while reporting an error; free memory and retry"};

fg_status *fg_error(fg_code code, const char *fmt, ...)
{
    fg_status *s = malloc(sizeof *s);
    if (!s)
        return &out_of_memory_status;
    s->code = code;
    s->is_static = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->message, sizeof s->message, fmt, ap);
    va_end(ap);
    return s;
}

fg_status *fg_error_wrap(fg_status *status, const char *fmt, ...)
{
    if (!status || status->is_static)
        return status;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char joined[sizeof prefix + sizeof status->message + 2];
    snprintf(joined, sizeof joined, "%s: %s", prefix, status->message);
    size_t n = strlen(joined);
    if (n >= sizeof status->message)
        n = sizeof status->message - 1;
    memcpy(status->message, joined, n);
    status->message[n] = 0;
    return status;
}

fg_code fg_status_code(const fg_status *status) { return status ? status->code : FG_OK; }
const char *fg_status_message(const fg_status *status) { return status ? status->message : ""; }

void fg_status_free(fg_status *status)
{
    if (status && !status->is_static)
        free(status);
}

fg_status *fg_status_need_value_sentinel(void)
{
    static fg_status need = {FG_ERR_SHAPE, 1, "the output shape depends on an input value that is not known yet"};
    return &need;
}
