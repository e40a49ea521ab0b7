/*
 * strv.c - see strv.h.
 */
#include "common/strv.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

void pd_strv_add(pd_strv_t *sv, const char *s) {
        /* Room for the new string and the NULL that ends the vector. */
        sv->v = pd_xgrow(sv->v, &sv->cap, sv->cnt + 2, sizeof(*sv->v));
        sv->v[sv->cnt++] = pd_xstrdup(s);
        sv->v[sv->cnt]   = NULL;
}

void pd_strv_set(pd_strv_t *sv, size_t i, const char *s) {
        char *copy = pd_xstrdup(s);

        free(sv->v[i]);
        sv->v[i] = copy;
}

void pd_strv_truncate(pd_strv_t *sv, size_t cnt) {
        if (!cnt) {
                pd_strv_clear(sv);
                return;
        }
        while (sv->cnt > cnt)
                free(sv->v[--sv->cnt]);
        if (sv->v)
                sv->v[sv->cnt] = NULL;
}

void pd_strv_clear(pd_strv_t *sv) {
        for (size_t i = 0; i < sv->cnt; i++)
                free(sv->v[i]);
        free(sv->v);
        sv->v   = NULL;
        sv->cnt = 0;
        sv->cap = 0;
}

int pd_strv_find(const pd_strv_t *sv, const char *s) {
        for (size_t i = 0; i < sv->cnt; i++)
                if (!strcmp(sv->v[i], s))
                        return (int)i;
        return -1;
}
