/*
 * strv.h - a NULL-terminated vector of owned strings with its count: an
 * argv, a list from the config, the actions an event names. Its own module
 * so that argv.h, config.h and schemas/event.h can all use it without
 * including each other.
 */
#ifndef PD_STRV_H
#define PD_STRV_H

#include <stddef.h>

typedef struct pd_strv_s {
        char **v; /* v[cnt] == NULL once anything was added; owned */
        size_t cnt;
        size_t cap; /* slots in v, the NULL's included (pd_xgrow) */
} pd_strv_t;

/* Appends a copy of s. The vector grows geometrically, so n appends cost
 * O(n). Never fails (aborts on OOM). */
void pd_strv_add(pd_strv_t *sv, const char *s);

/* Replaces sv->v[i] (i < cnt) with a copy of s. */
void pd_strv_set(pd_strv_t *sv, size_t i, const char *s);

/* Frees the strings after the first cnt (all of them, and the vector, for
 * 0: an empty vector holds no memory). */
void pd_strv_truncate(pd_strv_t *sv, size_t cnt);

/* Frees every string and the vector; leaves sv empty and reusable. */
void pd_strv_clear(pd_strv_t *sv);

/* Index of s in sv, or -1. */
int pd_strv_find(const pd_strv_t *sv, const char *s);

#endif
