/*
 * xalloc.c - allocation where running out of memory is fatal (xalloc.h).
 */
#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

void *pd_xalloc(void *p) {
        if (!p) {
                pd_log(PD_LOG_ERROR, "out of memory");
                abort();
        }
        return p;
}

void *pd_xcalloc(size_t n, size_t size) {
        return pd_xalloc(calloc(n ? n : 1, size));
}

char *pd_xstrdup(const char *s) {
        return pd_xalloc(strdup(s ? s : ""));
}
