/*
 * xalloc.c - allocation where running out of memory is fatal (xalloc.h).
 */
#include "common/xalloc.h"

#include <stdint.h>
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

void *pd_xmalloc(size_t size) {
        return pd_xalloc(malloc(size ? size : 1));
}

void *pd_xcalloc(size_t n, size_t size) {
        /* calloc checks n * size itself; NULL is then "out of memory". */
        return pd_xalloc(calloc(n ? n : 1, size ? size : 1));
}

void *pd_xrealloc(void *p, size_t size) {
        return pd_xalloc(realloc(p, size ? size : 1));
}

char *pd_xstrdup(const char *s) {
        return pd_xalloc(strdup(s ? s : ""));
}

char *pd_xstrndup(const char *s, size_t n) {
        return pd_xalloc(strndup(s, n));
}

void *pd_xgrow(void *items, size_t *capp, size_t need, size_t size) {
        size_t cap = *capp ? *capp : 8;

        if (need <= *capp && items)
                return items;
        while (cap < need) {
                if (cap > SIZE_MAX / 2)
                        pd_xalloc(NULL); /* cannot double: no such memory */
                cap *= 2;
        }
        if (size && cap > SIZE_MAX / size)
                pd_xalloc(NULL);
        items = pd_xrealloc(items, cap * size);
        *capp = cap;
        return items;
}
